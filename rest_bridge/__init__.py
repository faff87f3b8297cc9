"""The REST bridge: JSON over HTTP in, the sentiment gRPC service behind. It never imports torch."""
