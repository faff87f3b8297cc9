"""Client-side load balancing: three server processes on loopback, one client, a bounded load."""

from __future__ import annotations

import signal

import requests

from clients import SentimentClient
from tests.support.helpers import read_port_file, server_process
from tests.support.helpers import metric_samples

REPLICAS = 3
CALLS = 240


def served_predicts(metrics_port: int) -> float:
    text = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
    return metric_samples(text).get(("sentiment_grpc_requests_total", (("code", "OK"), ("method", "Predict"))), 0.0)


def test_round_robin_spreads_calls_and_survives_a_replica_dying(tiny_model_dir, tmp_path):
    port_files = [tmp_path / f"replica-{i}.json" for i in range(REPLICAS)]
    replicas = [server_process(tiny_model_dir, port_file) for port_file in port_files]
    for replica in replicas:
        replica.__enter__()
    try:
        bound = [read_port_file(port_file, replica) for port_file, replica in zip(port_files, replicas)]
        ports = [(b["grpc"], b["metrics"]) for b in bound]
        addresses = [f"127.0.0.1:{grpc_port}" for grpc_port, _ in ports]
        for address in addresses:
            with SentimentClient(address) as probe:
                probe.wait_until_serving(timeout=120)
        outcomes: list[str] = []
        with SentimentClient(addresses, timeout=30) as client:
            for i in range(CALLS // 2):
                outcomes.append(client.predict(f"good film {i}").label)
            shares = [served_predicts(metrics_port) for _, metrics_port in ports]
            # every replica took a fair share of the first half
            assert sum(shares) == CALLS // 2
            assert min(shares) >= CALLS // 2 / REPLICAS * 0.6, shares

            victim = replicas[1]
            victim.proc.send_signal(signal.SIGKILL)
            victim.proc.wait(30)
            for i in range(CALLS // 2, CALLS):
                outcomes.append(client.predict(f"good film {i}").label)  # raises if any call fails
        after = [served_predicts(ports[i][1]) for i in (0, 2)]
        assert len(outcomes) == CALLS
        assert sum(after) - (shares[0] + shares[2]) == CALLS // 2  # the survivors took every later call
        assert min(a - s for a, s in zip(after, (shares[0], shares[2]))) >= CALLS // 2 / 2 * 0.6  # and shared them
    finally:
        for replica in replicas:
            replica.__exit__(None, None, None)
