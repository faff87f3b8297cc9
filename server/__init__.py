"""The sentiment inference server: one inference core, adapted to gRPC."""

from sentiment.common import __version__

__all__ = ["__version__"]
