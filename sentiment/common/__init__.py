"""What every process of the service shares (server, bridge, clients): the version, tracing
propagation, logging set-up, metric buckets and the port file. It imports neither torch nor any of those packages,
so each can depend on it without depending on another."""

__version__ = "0.1.0"
