"""The console scripts as a user runs them: real processes, real sockets (port 0, read back), signals."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from clients import SentimentClient, SentimentError
from server.batching.policy import BatchPolicy
from tests.support.helpers import LABELS, Hold, Process, metric_samples, python_script, read_port_file, server_process, wait_for


def test_bridge_never_imports_torch():
    code = "import sys, rest_bridge.app, rest_bridge.main, clients.cli; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def bridge_process(backend: str, port_file: Path, *extra: str, env: dict | None = None) -> Process:
    return Process(python_script("rest_bridge.main", "--backend", backend, "--host", "127.0.0.1", "--port", "0",
                                 "--port-file", str(port_file), *extra), env=env)


def per_worker_counts(metrics_dir: Path, key: tuple) -> dict[int, float]:
    """``key``'s value as each gunicorn worker wrote it to its own multiprocess file (counter_<pid>.db)."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    counts = {}
    for db in sorted(metrics_dir.glob("counter_*.db")):
        single = metrics_dir.parent / f"one-{db.stem}"
        single.mkdir(exist_ok=True)
        shutil.copy(db, single / db.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(single))
        counts[int(db.stem.split("_")[1])] = metric_samples(generate_latest(registry).decode()).get(key, 0.0)
    return counts


PREDICT_OK = ("sentiment_http_requests_total", (("method", "POST"), ("route", "/predict"), ("status", "200")))


def test_server_and_gunicorn_bridge_end_to_end_with_request_ids_and_metrics(tiny_model_dir, tmp_path):
    metrics_dir = tmp_path / "bridge-metrics"
    metrics_dir.mkdir()
    with server_process(tiny_model_dir, tmp_path / "server.json", "--access-log") as server:
        grpc_port = read_port_file(tmp_path / "server.json", server)["grpc"]
        with bridge_process(f"127.0.0.1:{grpc_port}", tmp_path / "bridge.json", "--workers", "2",
                            env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}) as bridge:
            url = f"http://127.0.0.1:{read_port_file(tmp_path / 'bridge.json', bridge)['http']}"
            with SentimentClient(f"127.0.0.1:{grpc_port}") as client:
                client.wait_until_serving(timeout=120)
            wait_for(lambda: requests.get(f"{url}/readyz", timeout=2).status_code == 200, what="bridge ready")
            response = requests.post(f"{url}/predict", json={"text": "I love this"}, timeout=10,
                                     headers={"X-Request-Id": "trace-me-42"})
            assert response.status_code == 200 and response.json()["label"] in LABELS
            assert response.headers["X-Request-Id"] == "trace-me-42"
            ok = 1
            for i in range(20):
                assert requests.post(f"{url}/predict", json={"texts": [f"good {i}", "bad"]}, timeout=10).status_code == 200
                ok += 1
            assert requests.post(f"{url}/predict", json={"text": ""}, timeout=10).status_code == 400
            # /metrics must add up every gunicorn worker: send concurrent requests until both workers have
            # served some (the kernel decides which worker accepts a connection), then compare
            with ThreadPoolExecutor(8) as pool:
                for _ in range(50):
                    if len([c for c in per_worker_counts(metrics_dir, PREDICT_OK).values() if c > 0]) >= 2:
                        break
                    codes = list(pool.map(lambda i: requests.post(f"{url}/predict", json={"text": f"good {i}"},
                                                                  timeout=10).status_code, range(16)))
                    assert codes == [200] * 16
                    ok += 16
            per_worker = per_worker_counts(metrics_dir, PREDICT_OK)
            assert len([c for c in per_worker.values() if c > 0]) == 2, per_worker
            samples = metric_samples(requests.get(f"{url}/metrics", timeout=10).text)
            assert samples[PREDICT_OK] == sum(per_worker.values()) == ok
            assert samples[("sentiment_http_requests_total", (("method", "POST"), ("route", "/predict"), ("status", "400")))] == 1
            assert samples[("sentiment_bridge_upstream_calls_total", (("code", "INVALID_ARGUMENT"),))] == 1
            assert samples[("sentiment_http_request_duration_seconds_count", (("route", "/predict"),))] == ok + 1
            bridge.proc.send_signal(signal.SIGTERM)
            assert bridge.proc.wait(30) == 0
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(30) == 0
        access = [json.loads(line) for line in server.output().splitlines() if '"sentiment.access"' in line]
    traced = [entry for entry in access if entry.get("request_id") == "trace-me-42"]
    assert traced and traced[0]["method"] == "Predict" and traced[0]["code"] == "OK"
    assert {"OK", "INVALID_ARGUMENT"} <= {e["code"] for e in access}
    assert all(len(e["request_id"]) >= 8 for e in access)  # generated where the caller sent none


def test_sigterm_finishes_accepted_calls_then_exits_zero(tiny_model_dir, tmp_path):
    with server_process(tiny_model_dir, tmp_path / "ports.json", "--grace-seconds", "20") as server:
        target = f"127.0.0.1:{read_port_file(tmp_path / 'ports.json', server)['grpc']}"
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
    assert '"sentiment.access"' not in output  # no line per call unless --access-log asks for it


def held_server(tiny_model_dir, tmp_path, *extra) -> tuple[Process, Hold]:
    """The real server process (tests.support.gated_server) with the model held by the test's gate."""
    hold = Hold(tmp_path)
    return server_process(tiny_model_dir, tmp_path / "ports.json", *extra, module="tests.support.gated_server",
                          env=hold.env), hold


def _outcome(call, *args, **kwargs) -> tuple[str, str]:
    try:
        call(*args, **kwargs)
        return "OK", ""
    except SentimentError as error:
        return error.code, error.message


def test_not_serving_and_refusing_calls_while_warming_up(tiny_model_dir, tmp_path):
    """The server listens at once but says NOT_SERVING (and refuses Predict with UNAVAILABLE) until its
    warm-up batches have run; here the test holds the first warm-up batch."""
    process, hold = held_server(tiny_model_dir, tmp_path)
    hold.close()
    with process as server:
        target = f"127.0.0.1:{read_port_file(tmp_path / 'ports.json', server)['grpc']}"
        wait_for(lambda: hold.forward_passes_started() >= 1, what="the first warm-up batch")
        with SentimentClient(target, timeout=30, retries=False) as client:
            assert client.health() == "NOT_SERVING"
            code, message = _outcome(client.predict, "good film")
            assert code == "UNAVAILABLE" and "not ready" in message
            hold.open()
            client.wait_until_serving(timeout=120)
            assert client.predict("good film").label in LABELS


@contextlib.contextmanager
def sigterm_during_a_held_call(tiny_model_dir, tmp_path, *flags: str, timeout: float):
    """A held server with one call on the model (after its warm-up), then SIGTERM: yields the server, a
    client, the hold, the thread making the held call, its outcome (a list, empty until the call returns)
    and the forward passes started before it (the warm-up's)."""
    process, hold = held_server(tiny_model_dir, tmp_path, *flags)
    with process as server:
        target = f"127.0.0.1:{read_port_file(tmp_path / 'ports.json', server)['grpc']}"
        with SentimentClient(target, timeout=timeout, retries=False) as client:
            client.wait_until_serving(timeout=120)
            warm_up = hold.forward_passes_started()
            hold.close()
            held: list[tuple[str, str]] = []
            holder = threading.Thread(target=lambda: held.append(_outcome(client.predict, "good film")))
            holder.start()
            wait_for(lambda: hold.forward_passes_started() == warm_up + 1, what="the call on the model")
            server.proc.send_signal(signal.SIGTERM)
            yield server, client, hold, holder, held, warm_up


def test_sigterm_says_not_serving_refuses_new_calls_finishes_held_ones_then_lame_duck(tiny_model_dir, tmp_path):
    """On SIGTERM: health NOT_SERVING at once; new calls refused by our handlers (UNAVAILABLE, "shutting
    down") while the held call finishes; once the queue is drained, refusals go on for the lame-duck period
    (a tenth of --grace-seconds, at most 5 s) with the listener still open (the process is still there)."""
    with sigterm_during_a_held_call(tiny_model_dir, tmp_path, "--grace-seconds", "300",
                                    timeout=120) as (server, client, hold, holder, held, warm_up):
        wait_for(lambda: client.health(timeout=5) == "NOT_SERVING", what="NOT_SERVING after SIGTERM")
        code, message = _outcome(client.predict, "a new call")
        assert (code, "shutting down" in message) == ("UNAVAILABLE", True), message
        assert holder.is_alive() and not held  # the held call is still being served
        hold.open()
        holder.join(60)
        assert held == [("OK", "")]
        wait_for(lambda: "lame duck" in server.output(), what="the drain to finish")
        # The lame-duck period lasts 5 s here; calls through its first second must all be refused by our handler
        # (one call right after the log line could still beat a listener that closes at once)
        drained, outcomes = time.monotonic(), []
        while not outcomes or time.monotonic() - drained < 1.0:
            outcomes.append(_outcome(client.predict, "a call in the lame-duck period"))
            time.sleep(0.1)  # paces the calls through the period; nothing to wait for
        assert {(code, "shutting down" in message) for code, message in outcomes} == {("UNAVAILABLE", True)}, outcomes
        assert server.proc.poll() is None  # still listening: the refusals came from our handler
        assert hold.forward_passes_started() == warm_up + 1  # no refused call reached the model


def test_sigterm_cuts_off_calls_still_running_after_the_grace_period(tiny_model_dir, tmp_path):
    """A call the model is still on when --grace-seconds run out is cut off (the process does not wait for
    it); the process then exits 0."""
    with sigterm_during_a_held_call(tiny_model_dir, tmp_path, "--grace-seconds", "1",
                                    timeout=300) as (server, client, hold, holder, held, _):
        holder.join(120)  # ends while the model is still held: the grace period cut it off
        assert hold.path.exists() and held and held[0][0] in ("CANCELLED", "UNAVAILABLE"), held
        assert "cut off" in server.output()
        hold.open()  # let the model thread finish, so the interpreter can exit
        assert server.proc.wait(60) == 0


def test_gunicorn_bridge_on_sigterm_answers_its_requests_in_flight_then_exits_zero(tiny_model_dir, tmp_path):
    """The real ``sentiment-bridge`` (gunicorn, two workers) gets SIGTERM while three requests wait on a backend
    the test holds (one on the model, two queued): it does not exit while they are held, every one of them is
    answered 200 once the backend goes on, and the process exits 0."""
    process, hold = held_server(tiny_model_dir, tmp_path, "--max-queue-seconds", "0")  # held calls wait, unrefused
    with process as server:
        ports = read_port_file(tmp_path / "ports.json", server)
        target = f"127.0.0.1:{ports['grpc']}"
        with SentimentClient(target) as client:
            client.wait_until_serving(timeout=120)
        queued = lambda: metric_samples(requests.get(f"http://127.0.0.1:{ports['metrics']}/metrics",  # noqa: E731
                                                     timeout=10).text)[("sentiment_queue_depth", (("model", "sentiment"), ("version", "1")))]
        # one call per request (no shared calls), and a deadline far beyond the hold
        with bridge_process(target, tmp_path / "bridge.json", "--workers", "2", "--coalesce-calls", "0",
                            "--timeout-seconds", "60") as bridge:
            url = f"http://127.0.0.1:{read_port_file(tmp_path / 'bridge.json', bridge)['http']}"
            wait_for(lambda: requests.get(f"{url}/readyz", timeout=2).status_code == 200, what="bridge ready")
            warm_up = hold.forward_passes_started()
            hold.close()
            answers: dict[int, object] = {}

            def post(i: int) -> None:
                try:
                    answers[i] = requests.post(f"{url}/predict", json={"text": f"good film {i}"}, timeout=120)
                except requests.RequestException as error:
                    answers[i] = error

            callers = [threading.Thread(target=post, args=(i,)) for i in range(3)]
            for caller in callers:
                caller.start()
            on_model = lambda: sum(map(int, hold.started.read_text().splitlines()[warm_up:]))  # noqa: E731
            wait_for(lambda: hold.forward_passes_held() >= 1 and on_model() + queued() == 3,
                     what="the three requests at the backend")
            bridge.proc.send_signal(signal.SIGTERM)
            wait_for(lambda: "Handling signal: term" in bridge.output(), what="gunicorn handling SIGTERM")
            still_held = (bridge.proc.poll(), dict(answers))
            hold.open()
            for caller in callers:
                caller.join(120)
            assert bridge.proc.wait(60) == 0
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(60) == 0
    assert still_held == (None, {})  # SIGTERM ended neither the bridge nor a request while the backend held them
    outcomes = [getattr(answers[i], "status_code", answers[i]) for i in range(3)]
    assert outcomes == [200, 200, 200]
    assert all(answers[i].json()["label"] in LABELS for i in range(3))


def spans_printed(output: str) -> list[dict]:
    """The spans ``--tracing console`` printed (OpenTelemetry's console exporter: indented JSON objects),
    from among the process's other output (one-line JSON logs)."""
    spans, lines = [], None
    for line in output.splitlines():
        if line == "{":
            lines = [line]
        elif lines is not None:
            lines.append(line)
            if line == "}":
                spans.append(json.loads("\n".join(lines)))
                lines = None
    return spans


def test_tracing_console_prints_spans_and_the_bridge_span_is_the_server_spans_parent(tiny_model_dir, tmp_path):
    """``--tracing console`` on the real server and bridge processes: one /predict makes a span in each,
    printed by each process, in one trace, the bridge's POST /predict the parent of the server's Predict."""
    with server_process(tiny_model_dir, tmp_path / "server.json", "--tracing", "console") as server:
        target = f"127.0.0.1:{read_port_file(tmp_path / 'server.json', server)['grpc']}"
        with SentimentClient(target) as client:
            client.wait_until_serving(timeout=120)
        with bridge_process(target, tmp_path / "bridge.json", "--workers", "1", "--tracing", "console") as bridge:
            url = f"http://127.0.0.1:{read_port_file(tmp_path / 'bridge.json', bridge)['http']}"
            wait_for(lambda: requests.get(f"{url}/readyz", timeout=2).status_code == 200, what="bridge ready")
            response = requests.post(f"{url}/predict", json={"text": "i love this"}, timeout=30,
                                     headers={"X-Request-Id": "traced-42"})
            assert response.status_code == 200
            bridge.proc.send_signal(signal.SIGTERM)  # a clean exit flushes the spans still batched
            assert bridge.proc.wait(60) == 0
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(60) == 0
        bridge_spans = [s for s in spans_printed(bridge.output()) if s["attributes"].get("request_id") == "traced-42"]
        server_spans = [s for s in spans_printed(server.output()) if s["attributes"].get("request_id") == "traced-42"]
    assert [s["name"] for s in bridge_spans] == ["POST /predict"]
    assert [s["name"] for s in server_spans] == ["sentiment.v1.SentimentService/Predict"]
    (parent,), (child,) = bridge_spans, server_spans
    assert parent["resource"]["attributes"]["service.name"] == "sentiment-bridge"
    assert child["resource"]["attributes"]["service.name"] == "sentiment-server"
    assert child["context"]["trace_id"] == parent["context"]["trace_id"]
    assert child["parent_id"] == parent["context"]["span_id"]
    assert (parent["kind"], child["kind"]) == ("SpanKind.SERVER", "SpanKind.SERVER")


def serve_all_env(tiny_model_dir, tmp_path) -> dict:
    return {"SENTIMENT_MODEL": str(tiny_model_dir), "SENTIMENT_HOST": "127.0.0.1", "SENTIMENT_PORT": "0",
            "CUDA_VISIBLE_DEVICES": "", "SENTIMENT_ENGINE": "torch", "SENTIMENT_METRICS_PORT": "0", "SENTIMENT_BRIDGE_HOST": "127.0.0.1",
            "SENTIMENT_BRIDGE_PORT": "0", "SENTIMENT_BRIDGE_PORT_FILE": str(tmp_path / "bridge.json"),
            "SENTIMENT_BRIDGE_WORKERS": "1"}


def test_serve_all_runs_server_and_bridge_and_stops_on_sigterm(tiny_model_dir, tmp_path):
    with Process(python_script("launcher.serve_all"), env=serve_all_env(tiny_model_dir, tmp_path)) as both:
        url = f"http://127.0.0.1:{read_port_file(tmp_path / 'bridge.json', both)['http']}"
        wait_for(lambda: requests.get(f"{url}/readyz", timeout=2).status_code == 200, timeout=120, what="ready")
        body = requests.post(f"{url}/predict", json={"text": "I love this"}, timeout=10).json()
        assert body["label"] == LABELS[body["predicted_class"]]
        both.proc.send_signal(signal.SIGTERM)
        assert both.proc.wait(60) == 0


@pytest.mark.parametrize("victim", ["server", "bridge"])
def test_serve_all_exits_non_zero_when_either_child_dies(tiny_model_dir, tmp_path, victim):
    with Process(python_script("launcher.serve_all"), env=serve_all_env(tiny_model_dir, tmp_path)) as both:
        url = f"http://127.0.0.1:{read_port_file(tmp_path / 'bridge.json', both)['http']}"
        wait_for(lambda: requests.get(f"{url}/readyz", timeout=2).status_code == 200, timeout=120, what="ready")
        started = re.search(r"the server \(pid (\d+)\) and the bridge \(pid (\d+)\)", both.output())
        pids = {"server": int(started[1]), "bridge": int(started[2])}
        os.kill(pids[victim], signal.SIGKILL)
        assert both.proc.wait(60) == 128 + signal.SIGKILL
        assert not _alive(pids["bridge" if victim == "server" else "server"])  # serve-all stopped it and reaped it
        assert f"the {victim} exited" in both.output()


def _alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        return "State:\tZ" not in status.read_text()
    except FileNotFoundError:
        return False


def test_the_model_threads_run_nicer_than_the_event_loop(tiny_model_dir, tmp_path):
    """BatchPolicy.model_nice (5): the model thread and the engine pool threads it starts get the lower priority; the event
    loop and gRPC core's threads keep the process's own."""
    port_file = tmp_path / "ports.json"
    with server_process(tiny_model_dir, port_file) as server:
        with SentimentClient(f"127.0.0.1:{read_port_file(port_file)['grpc']}", timeout=30) as client:
            client.wait_until_serving(timeout=60)
            client.predict_batch(["good film", "bad film"] * 4)  # the pool threads exist once a batch ran
        nice = {}
        for task in Path(f"/proc/{server.pid}/task").iterdir():
            with contextlib.suppress(OSError):
                nice.setdefault((task / "comm").read_text().strip(), set()).add(
                    int((task / "stat").read_text().rsplit(")", 1)[1].split()[16]))
    base = os.getpriority(os.PRIO_PROCESS, 0)
    assert nice.pop("model") == {base + BatchPolicy().model_nice} and BatchPolicy().model_nice > 0
    assert nice and all(values == {base} for values in nice.values())


def _accepts(port: int) -> bool:
    """Whether something listens on 127.0.0.1:``port`` (a connection is accepted)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        return True
    except OSError:
        return False


def test_the_port_files_name_the_ports_the_processes_listen_on(tiny_model_dir, tmp_path):
    """--port 0 picks free ports; the port file says which, once the process listens on them: the server's gRPC
    and metrics ports, the bridge's HTTP port, each accepting connections and answering as that service."""
    with server_process(tiny_model_dir, tmp_path / "server.json") as server:
        ports = read_port_file(tmp_path / "server.json", server)
        assert set(ports) == {"grpc", "metrics"} and 0 not in ports.values()
        assert _accepts(ports["grpc"]) and _accepts(ports["metrics"])
        assert "sentiment_grpc_requests_total" in requests.get(f"http://127.0.0.1:{ports['metrics']}/metrics", timeout=10).text
        with bridge_process(f"127.0.0.1:{ports['grpc']}", tmp_path / "bridge.json") as bridge:
            http = read_port_file(tmp_path / "bridge.json", bridge)
            assert set(http) == {"http"} and http["http"] != 0 and _accepts(http["http"])
            assert requests.get(f"http://127.0.0.1:{http['http']}/healthz", timeout=10).json() == {"status": "ok"}
