"""The sentiment inference server: one inference core, adapted to gRPC."""

__version__ = "0.1.0"
