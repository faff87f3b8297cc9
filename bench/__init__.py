"""Throughput and latency benchmarks: raw model limit, the seed's design, our gRPC server and bridge."""
