"""The gRPC transport: the ``sentiment.v1`` and Open Inference Protocol servicers, their converters, the
one error mapping, health, security, per-call observability and the server factory."""
