"""The console scripts as a user runs them: real processes, real sockets, signals."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time

import requests

from clients import SentimentClient, SentimentError
from tests.helpers import LABELS, Process, free_port, python_script, wait_for


def start_server(model_dir, port, *extra):
    return Process(python_script("server.app", "--model", str(model_dir), "--host", "127.0.0.1", "--port", str(port),
                                 "--device", "cpu", "--metrics-port", "0", *extra))


def test_bridge_never_imports_torch():
    code = "import sys, rest_bridge.app, rest_bridge.main, clients.cli; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def metric_samples(text: str) -> dict[tuple, float]:
    from prometheus_client.parser import text_string_to_metric_families

    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def test_server_and_gunicorn_bridge_end_to_end_with_request_ids_and_metrics(tiny_model_dir):
    grpc_port, http_port = free_port(), free_port()
    with start_server(tiny_model_dir, grpc_port) as server, Process(python_script(
            "rest_bridge.main", "--backend", f"127.0.0.1:{grpc_port}", "--host", "127.0.0.1",
            "--port", str(http_port), "--workers", "2", "--threads", "4")) as bridge:
        with SentimentClient(f"127.0.0.1:{grpc_port}") as client:
            client.wait_until_serving(timeout=120)
        url = f"http://127.0.0.1:{http_port}"
        wait_for(lambda: requests.get(f"{url}/readyz", timeout=2).status_code == 200, what="bridge ready")
        response = requests.post(f"{url}/predict", json={"text": "I love this"}, timeout=10,
                                 headers={"X-Request-Id": "trace-me-42"})
        assert response.status_code == 200 and response.json()["label"] in LABELS
        assert response.headers["X-Request-Id"] == "trace-me-42"
        for i in range(20):
            assert requests.post(f"{url}/predict", json={"texts": [f"good {i}", "bad"]}, timeout=10).status_code == 200
        assert requests.post(f"{url}/predict", json={"text": ""}, timeout=10).status_code == 400
        # /metrics adds up every gunicorn worker
        samples = metric_samples(requests.get(f"{url}/metrics", timeout=10).text)
        ok = samples[("sentiment_http_requests_total", (("method", "POST"), ("route", "/predict"), ("status", "200")))]
        assert ok == 21
        assert samples[("sentiment_http_requests_total", (("method", "POST"), ("route", "/predict"), ("status", "400")))] == 1
        assert samples[("sentiment_bridge_upstream_calls_total", (("code", "INVALID_ARGUMENT"),))] == 1
        assert samples[("sentiment_http_request_duration_seconds_count", (("route", "/predict"),))] == 22
        bridge.proc.send_signal(signal.SIGTERM)
        assert bridge.proc.wait(30) == 0
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(30) == 0
        access = [json.loads(line) for line in server.output().splitlines() if '"sentiment.access"' in line]
    traced = [entry for entry in access if entry.get("request_id") == "trace-me-42"]
    assert traced and traced[0]["method"] == "Predict" and traced[0]["code"] == "OK"
    assert {"OK", "INVALID_ARGUMENT"} <= {e["code"] for e in access}
    assert all(len(e["request_id"]) >= 8 for e in access)  # generated where the caller sent none


def test_sigterm_finishes_accepted_calls_then_exits_zero(tiny_model_dir):
    port = free_port()
    with start_server(tiny_model_dir, port, "--grace-seconds", "20") as server:
        target = f"127.0.0.1:{port}"
        with SentimentClient(target) as client:
            client.wait_until_serving(timeout=120)
        calls: list[tuple[float, float, str]] = []  # (started, ended, outcome)
        first_done = threading.Event()
        sigterm_at = [float("inf")]

        def caller():
            with SentimentClient(target, retries=False) as c:
                for i in range(40):
                    started = time.monotonic()
                    try:
                        c.predict_batch([f"good film {i} " * 10] * 8, timeout=30)
                        calls.append((started, time.monotonic(), "ok"))
                        first_done.set()
                    except SentimentError as error:
                        calls.append((started, time.monotonic(), error.code))
                        if started > sigterm_at[0]:
                            return

        threads = [threading.Thread(target=caller) for _ in range(8)]
        for t in threads:
            t.start()
        first_done.wait(60)
        sigterm_at[0] = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(120)
        assert server.proc.wait(60) == 0
        output = server.output()
    in_flight = [outcome for started, ended, outcome in calls if started < sigterm_at[0] < ended]
    before = [outcome for started, ended, outcome in calls if ended < sigterm_at[0]]
    after = [outcome for started, _, outcome in calls if started > sigterm_at[0]]
    # Calls being served at SIGTERM complete; one that reached the server just after the signal is refused
    # cleanly with UNAVAILABLE (never run, never cut off half-way).
    assert "ok" in in_flight and set(in_flight) <= {"ok", "UNAVAILABLE"}, calls
    assert set(before) == {"ok"}
    # Later calls are refused. Our handlers answer UNAVAILABLE while the queue drains; a call that reaches
    # the socket in the instant the listener closes gets CANCELLED from gRPC core (grpc/grpc#41785).
    assert set(after) <= {"UNAVAILABLE", "CANCELLED"} and "UNAVAILABLE" in after
    assert "listening" in output and "stopped" in output


def test_serve_all_runs_server_and_bridge_and_stops_on_sigterm(tiny_model_dir):
    grpc_port, http_port = free_port(), free_port()
    env = {"SENTIMENT_MODEL": str(tiny_model_dir), "SENTIMENT_HOST": "127.0.0.1", "SENTIMENT_PORT": str(grpc_port),
           "SENTIMENT_DEVICE": "cpu", "SENTIMENT_METRICS_PORT": "0", "SENTIMENT_BRIDGE_HOST": "127.0.0.1", "SENTIMENT_BRIDGE_PORT": str(http_port),
           "SENTIMENT_BRIDGE_WORKERS": "1"}
    with Process(python_script("server.serve_all"), env=env) as both:
        url = f"http://127.0.0.1:{http_port}"
        wait_for(lambda: requests.get(f"{url}/readyz", timeout=2).status_code == 200, timeout=120, what="ready")
        body = requests.post(f"{url}/predict", json={"text": "I love this"}, timeout=10).json()
        assert body["label"] == LABELS[body["predicted_class"]]
        both.proc.send_signal(signal.SIGTERM)
        assert both.proc.wait(60) == 0
