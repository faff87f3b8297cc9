"""File scoring over HTTP: POST /v1/jobs, progress, downloads, limits; in front of a real gRPC server."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time

import pytest
import requests

from clients import SentimentClient
from rest_bridge.jobstore import JobStore
from tests.support.helpers import (LABELS, MAX_TEXT_CHARS, Process, ServerThread, gated_classifier, metric_samples, policy,
                                   python_script, read_port_file, refused_port, server_settings, wait_for)
from tests.support.bridge import BridgeThread

CSV_TEXT = "id,text,label\n1,i love this film,pos\n2,terrible food,neg\n3,,none\n4,\"okay, not great\",mid\n"


@pytest.fixture(scope="module")
def bridge(grpc_server, tmp_path_factory):
    with BridgeThread(grpc_server.target, policy={"max_upload_bytes": 4096}, jobs_dir=tmp_path_factory.mktemp("jobs"),
                      job_batch_texts=2) as running:
        yield running


def upload(url, content: str | bytes, filename="reviews.csv", **form):
    return requests.post(f"{url}/v1/jobs", files={"file": (filename, content)}, data=form, timeout=10)


def finished(url, job_id):
    def done():
        status = requests.get(f"{url}/v1/jobs/{job_id}", timeout=10).json()
        return status if status["state"] not in ("queued", "running") else None
    return wait_for(done, timeout=60, what="job finished")


def test_csv_is_scored_in_order_with_its_columns_kept(bridge, grpc_server):
    response = upload(bridge.url, CSV_TEXT)
    assert response.status_code == 202
    job = response.json()
    assert response.headers["Location"].endswith(f"/v1/jobs/{job['id']}")
    assert (job["total"], job["format"], job["columns"]) == (4, "csv", ["id", "text", "label"])
    status = finished(bridge.url, job["id"])
    assert status["state"] == "done" and status["done"] == 4 and status["errors"] == 1
    assert list(status["labels"]) == LABELS and sum(status["labels"].values()) == 3
    assert [row["text"] for row in status["preview"]] == ["i love this film", "terrible food", "", "okay, not great"]
    assert "no text" in status["preview"][2]["error"]

    with SentimentClient(grpc_server.target) as client:
        expected = client.predict_batch(["i love this film", "terrible food", "okay, not great"])
    scored = requests.get(f"{bridge.url}/v1/jobs/{job['id']}/result?format=csv", timeout=10)
    assert scored.headers["Content-Disposition"] == 'attachment; filename="reviews.scored.csv"'
    rows = list(csv.DictReader(io.StringIO(scored.text)))
    assert [r["id"] for r in rows] == ["1", "2", "3", "4"]
    assert [r["label"] for r in rows] == ["pos", "neg", "none", "mid"]  # the file's own label column is kept
    assert [r["predicted_label"] for r in rows if not r["error"]] == [p.label for p in expected]
    assert float(rows[0][f"score_{expected[0].label}"]) == pytest.approx(expected[0].scores[expected[0].label])
    assert rows[2]["predicted_label"] == "" and rows[2]["error"]

    lines = requests.get(f"{bridge.url}/v1/jobs/{job['id']}/result?format=jsonl", timeout=10).text.splitlines()
    records = [json.loads(line) for line in lines]
    assert records[0]["id"] == "1" and records[0]["prediction"]["label"] == expected[0].label
    assert records[2]["error"]["code"] == "INVALID_ARGUMENT"


def test_jsonl_rows_too_long_for_the_server_fail_alone(bridge):
    rows = [{"text": "good day", "n": 1}, {"text": "x" * (MAX_TEXT_CHARS + 1), "n": 2}, {"text": "bad night", "n": 3}]
    job = upload(bridge.url, "\n".join(json.dumps(r) for r in rows), filename="t.jsonl").json()
    status = finished(bridge.url, job["id"])
    assert (status["state"], status["done"], status["errors"]) == ("done", 3, 1)
    records = [json.loads(x) for x in requests.get(f"{bridge.url}/v1/jobs/{job['id']}/result", timeout=10).text.splitlines()]
    assert [("prediction" in r, r["n"]) for r in records] == [(True, 1), (False, 2), (True, 3)]


def test_raw_csv_body_works_like_a_form(bridge):
    response = requests.post(f"{bridge.url}/v1/jobs?filename=x.csv", data=CSV_TEXT.encode(),
                             headers={"Content-Type": "text/csv"}, timeout=10)
    assert response.status_code == 202
    assert finished(bridge.url, response.json()["id"])["done"] == 4


@pytest.mark.parametrize("content, filename, status, words", [
    ("id,body\n1,hello\n", "a.csv", 422, "no 'text' column"),
    ("", "a.csv", 422, "no rows"),
    ('{"text": "fine"}\n{not json\n', "a.jsonl", 400, "line 2 is not valid JSON"),
    ("[1, 2]\n", "a.jsonl", 422, "line 1 is not a JSON object"),
    (b"text\n\xff\xfe\n", "a.csv", 400, "not UTF-8"),
    ("text\n" + "word " * 1000 + "\n", "a.csv", 413, "larger than 4096 bytes"),
])
def test_unusable_files_get_a_clear_4xx(bridge, content, filename, status, words):
    response = upload(bridge.url, content, filename=filename)
    assert response.status_code == status
    assert words in response.json()["error"]["message"]


def test_wrong_requests_get_a_clear_4xx(bridge):
    assert requests.post(f"{bridge.url}/v1/jobs", json={"text": "a"}, timeout=10).status_code == 415
    bad_option = upload(bridge.url, CSV_TEXT, truncation="sometimes")
    assert bad_option.status_code == 422 and bad_option.json()["error"]["field"] == "truncation"
    assert requests.get(f"{bridge.url}/v1/jobs/{'0' * 32}", timeout=10).status_code == 404
    assert requests.get(f"{bridge.url}/v1/jobs/not-a-job-id/result", timeout=10).status_code == 404
    job = upload(bridge.url, CSV_TEXT).json()
    finished(bridge.url, job["id"])
    assert requests.get(f"{bridge.url}/v1/jobs/{job['id']}/result?format=xml", timeout=10).status_code == 422


def test_a_job_waits_for_the_bridges_in_flight_slots_and_can_be_cancelled(grpc_server, tmp_path):
    """The job takes its slots from the same limit as /predict: while every slot is held it scores nothing
    (and /predict is refused), and it goes on once one is free."""
    with BridgeThread(grpc_server.target, max_concurrent_requests=1, jobs_dir=tmp_path, policy={"shared_call_texts": 1}) as bridge:
        gate = bridge.backend.in_flight
        gate.acquire()
        try:
            job = upload(bridge.url, CSV_TEXT).json()
            wait_for(lambda: requests.get(f"{bridge.url}/v1/jobs/{job['id']}", timeout=10).json()["state"] == "running",
                     what="job running")
            assert requests.get(f"{bridge.url}/v1/jobs/{job['id']}", timeout=10).json()["done"] == 0
            assert requests.post(f"{bridge.url}/predict", json={"text": "hi"}, timeout=10).status_code == 429
            assert requests.get(f"{bridge.url}/v1/jobs/{job['id']}/result", timeout=10).status_code == 409
        finally:
            gate.release()
        assert finished(bridge.url, job["id"])["done"] == 4

        gate.acquire()
        try:
            second = upload(bridge.url, CSV_TEXT).json()
            assert requests.delete(f"{bridge.url}/v1/jobs/{second['id']}", timeout=10).status_code == 204
            wait_for(lambda: requests.get(f"{bridge.url}/v1/jobs/{second['id']}", timeout=10).status_code == 404,
                     what="cancelled job removed")
        finally:
            gate.release()


def test_jobs_past_the_per_worker_limit_get_429(grpc_server, tmp_path):
    with BridgeThread(grpc_server.target, max_concurrent_requests=1, jobs_dir=tmp_path, policy={"max_jobs": 1}) as bridge:
        gate = bridge.backend.in_flight
        gate.acquire()  # the first job cannot finish while the test holds the only slot
        try:
            first = upload(bridge.url, CSV_TEXT)
            assert first.status_code == 202
            refused = upload(bridge.url, CSV_TEXT)
            assert refused.status_code == 429 and refused.headers["Retry-After"]
            assert refused.json()["error"]["code"] == "RESOURCE_EXHAUSTED"
        finally:
            gate.release()
        assert finished(bridge.url, first.json()["id"])["state"] == "done"
        assert upload(bridge.url, CSV_TEXT).status_code == 202  # its slot is free again


def test_backend_down_refuses_the_upload_with_503():
    with refused_port() as port, BridgeThread(f"127.0.0.1:{port}", timeout_seconds=2.0) as dead:
        response = upload(dead.url, CSV_TEXT)
        assert response.status_code == 503 and response.json()["error"]["code"] == "UNAVAILABLE"


def test_a_job_whose_worker_died_reads_as_failed(tmp_path):
    store = JobStore(tmp_path, ttl_seconds=60)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    store.create("a" * 32, {"id": "a" * 32, "state": "running"})
    status = json.loads((tmp_path / ("a" * 32) / "status.json").read_text())
    store.write_status("a" * 32, {**status, "owner": {**status["owner"], "pid": int(dead.stdout)}})
    failed = store.read_status("a" * 32)
    assert failed["state"] == "failed" and failed["error"]["code"] == "ABORTED"


def test_every_gunicorn_worker_sees_every_job(grpc_server, tmp_path):
    """Two workers, one job directory: polls and downloads land on either worker and all find the job."""
    with Process(python_script("rest_bridge.main", "--backend", grpc_server.target, "--host", "127.0.0.1",
                               "--port", "0", "--port-file", str(tmp_path / "bridge.json"),
                               "--workers", "2")) as bridge:
        url = f"http://127.0.0.1:{read_port_file(tmp_path / 'bridge.json', bridge)['http']}"
        wait_for(lambda: requests.get(f"{url}/readyz", timeout=2).status_code == 200, what="bridge ready")
        job = upload(url, CSV_TEXT).json()
        status = finished(url, job["id"])
        assert status["done"] == 4
        for _ in range(20):  # fresh connections, spread over the workers by the kernel
            assert requests.get(f"{url}/v1/jobs/{job['id']}", timeout=10).status_code == 200
            assert requests.get(f"{url}/v1/jobs/{job['id']}/result", timeout=10).status_code == 200
        assert bridge.proc.poll() is None


def test_a_finished_job_is_removed_after_the_ttl_at_the_next_upload(grpc_server, tmp_path):
    """BridgePolicy.job_ttl_seconds: a finished job stays downloadable until the TTL has passed, and the next
    upload sweeps it (status, result and its directory gone); a job still running is never swept, and a
    bridge whose TTL has not passed keeps its finished jobs."""
    ttl = 0.05

    def past_the_ttl(job_id):
        updated = requests.get(f"{bridge.url}/v1/jobs/{job_id}", timeout=10).json()["updated_at"]
        wait_for(lambda: time.time() > updated + ttl, what="the TTL passed")  # on the bridge's own clock

    with BridgeThread(grpc_server.target, max_concurrent_requests=1, jobs_dir=tmp_path / "short",
                      policy={"job_ttl_seconds": ttl}) as bridge:
        old = upload(bridge.url, CSV_TEXT).json()["id"]
        finished(bridge.url, old)
        past_the_ttl(old)
        assert requests.get(f"{bridge.url}/v1/jobs/{old}/result", timeout=10).status_code == 200  # only uploads sweep
        sweeper = upload(bridge.url, CSV_TEXT).json()["id"]
        for path in ("", "/result"):
            assert requests.get(f"{bridge.url}/v1/jobs/{old}{path}", timeout=10).status_code == 404
        assert not (tmp_path / "short" / old).exists()
        finished(bridge.url, sweeper)

        gate = bridge.backend.in_flight
        gate.acquire()  # the next job cannot finish while the test holds the only slot
        try:
            running = upload(bridge.url, CSV_TEXT).json()["id"]
            wait_for(lambda: requests.get(f"{bridge.url}/v1/jobs/{running}", timeout=10).json()["state"] == "running",
                     what="the job running")
            past_the_ttl(running)
            another = upload(bridge.url, CSV_TEXT).json()["id"]
            still = requests.get(f"{bridge.url}/v1/jobs/{running}", timeout=10)
            assert (still.status_code, still.json().get("state")) == (200, "running")
        finally:
            gate.release()
        for job in (running, another):
            assert finished(bridge.url, job)["state"] == "done"

    with BridgeThread(grpc_server.target, jobs_dir=tmp_path / "long") as bridge:  # the default TTL, an hour
        kept = upload(bridge.url, CSV_TEXT).json()["id"]
        finished(bridge.url, kept)
        finished(bridge.url, upload(bridge.url, CSV_TEXT).json()["id"])
        assert requests.get(f"{bridge.url}/v1/jobs/{kept}/result", timeout=10).status_code == 200


def test_a_job_rides_out_an_overloaded_backend_and_scores_every_row(tiny_model_dir, tmp_path):
    """The backend refuses the job's calls with RESOURCE_EXHAUSTED (its queue is full while the test holds
    the model) for a while, then answers: the job keeps running meanwhile, waiting it out with backoff
    (clients.retry.WAIT_OUT_OVERLOAD), and ends done with every row scored."""
    model, recorder = gated_classifier(tiny_model_dir)
    settings = server_settings(tiny_model_dir, max_batch_size=1)
    texts = [f"good film number {i}" for i in range(5)]
    with ServerThread(settings, model, policy(settings, max_queue_size=8, warmup=False)) as server, \
            BridgeThread(server.target, jobs_dir=tmp_path) as bridge, SentimentClient(server.target, timeout=60) as client:
        metrics = f"http://127.0.0.1:{server.running.metrics_port}/metrics"
        refusals = lambda: metric_samples(requests.get(metrics, timeout=10).text).get(  # noqa: E731
            ("sentiment_grpc_requests_total", (("code", "RESOURCE_EXHAUSTED"), ("method", "PredictBatch"))), 0)
        recorder.gate.clear()
        try:
            holder = client.predict_future("held on the model")
            wait_for(recorder.busy.is_set, what="the model busy")
            filler = client.predict_batch_future(["queued"] * 8)
            wait_for(lambda: server.running.core.batcher.queue_depth == 8, what="a full queue")
            job = upload(bridge.url, "text\n" + "\n".join(texts) + "\n").json()["id"]
            state = lambda: requests.get(f"{bridge.url}/v1/jobs/{job}", timeout=10).json()["state"]  # noqa: E731
            wait_for(lambda: refusals() >= 2 or state() != "running", what="the job's call refused, then again")
            assert state() == "running" and refusals() >= 2  # refused, waited, tried again: still running
        finally:
            recorder.gate.set()
        holder.result(60), filler.result(60)
        status = finished(bridge.url, job)
        assert (status["state"], status["done"], status["errors"]) == ("done", 5, 0), status
        records = [json.loads(x) for x in requests.get(f"{bridge.url}/v1/jobs/{job}/result", timeout=10).text.splitlines()]
        assert [r["text"] for r in records] == texts and all(r["prediction"]["label"] in LABELS for r in records)


# Text pairs: the same text with two aspects, a row whose pair is blank (CSV: an empty cell), the rest paired.
PAIR_CSV = ("id,review,aspect\n1,the food was good but the service was bad,service\n"
            "2,the food was good but the service was bad,food\n3,i love this film,the night\n4,terrible food,\n"
            "5,okay day,service\n")
PAIR_JSONL_ROWS = [
    {"id": 1, "review": "the food was good but the service was bad", "aspect": "service"},
    {"id": 2, "review": "the food was good but the service was bad", "aspect": "food"},
    {"id": 3, "review": "i love this film", "aspect": "the night"},
    {"id": 4, "review": "terrible food", "aspect": None},  # null
    {"id": 5, "review": "okay day", "aspect": "service"},
    {"id": 6, "review": "bad night"},  # absent
    {"id": 7, "review": "good day", "aspect": "  "},  # blank
]


def predict(url, body: dict) -> dict:
    answer = requests.post(f"{url}/predict", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_a_pair_column_scores_each_row_as_predict_with_its_text_pair(bridge, kind):
    """Every row with a pair gets what /predict answers for {text, text_pair}; a row whose pair is empty, null,
    absent or blank gets an INVALID_ARGUMENT error of its own (it is not scored as a single text)."""
    if kind == "csv":
        content, filename = PAIR_CSV, "aspects.csv"
        rows = list(csv.DictReader(io.StringIO(PAIR_CSV)))
    else:
        content, filename = "\n".join(json.dumps(r) for r in PAIR_JSONL_ROWS), "aspects.jsonl"
        rows = PAIR_JSONL_ROWS
    response = upload(bridge.url, content, filename=filename, text_field="review", pair_field="aspect")
    assert response.status_code == 202, response.text
    assert (response.json()["text_field"], response.json()["pair_field"]) == ("review", "aspect")
    status = finished(bridge.url, response.json()["id"])
    blank = [i for i, r in enumerate(rows) if not (r.get("aspect") or "").strip()]
    assert (status["state"], status["done"], status["errors"]) == ("done", len(rows), len(blank))
    assert status["pair_field"] == "aspect"
    assert [p["pair"] for p in status["preview"]] == [r.get("aspect") for r in rows]

    lines = requests.get(f"{bridge.url}/v1/jobs/{response.json()['id']}/result", timeout=10).text.splitlines()
    records = [json.loads(line) for line in lines]
    assert [str(r["id"]) for r in records] == [str(r["id"]) for r in rows]
    for i, (row, record) in enumerate(zip(rows, records)):
        if i in blank:
            assert "prediction" not in record and record["error"]["code"] == "INVALID_ARGUMENT"
            assert "'aspect'" in record["error"]["message"]
            continue
        expected = predict(bridge.url, {"text": row["review"], "text_pair": row["aspect"]})
        got = record["prediction"]
        assert (got["label"], got["predicted_class"], got["num_tokens"], got["truncated"]) == \
            (expected["label"], expected["predicted_class"], expected["num_tokens"], expected["truncated"])
        assert got["scores"] == pytest.approx(expected["scores"], abs=1e-5)
    # the pair is read: the same text scores differently with each aspect, and unlike the text alone
    alone = predict(bridge.url, {"text": rows[0]["review"]})
    assert records[0]["prediction"]["scores"] != pytest.approx(records[1]["prediction"]["scores"], abs=1e-4)
    assert records[0]["prediction"]["scores"] != pytest.approx(alone["scores"], abs=1e-4)


def test_a_pair_column_takes_query_parameters_with_a_raw_body(bridge):
    response = requests.post(f"{bridge.url}/v1/jobs?filename=aspects.csv&text_field=review&pair_field=aspect",
                             data=PAIR_CSV.encode(), headers={"Content-Type": "text/csv"}, timeout=10)
    assert response.status_code == 202, response.text
    status = finished(bridge.url, response.json()["id"])
    assert (status["pair_field"], status["done"], status["errors"]) == ("aspect", 5, 1)
    scored = requests.get(f"{bridge.url}/v1/jobs/{status['id']}/result?format=csv", timeout=10).text
    rows = list(csv.DictReader(io.StringIO(scored)))
    expected = predict(bridge.url, {"text": rows[1]["review"], "text_pair": "food"})
    assert rows[1]["aspect"] == "food" and rows[1]["predicted_label"] == expected["label"]
    label = expected["label"]
    assert float(rows[1][f"score_{label}"]) == pytest.approx(expected["scores"][label], abs=1e-5)
    assert rows[3]["predicted_label"] == "" and "'aspect'" in rows[3]["error"]


def test_a_missing_pair_column_is_422_naming_it(bridge):
    response = upload(bridge.url, CSV_TEXT, text_field="text", pair_field="aspect")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == "pair_field" and "no 'aspect' column" in error["message"]


def test_chunk_with_a_pair_column_is_refused_at_submission(bridge):
    response = upload(bridge.url, PAIR_CSV, text_field="review", pair_field="aspect", truncation="chunk")
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "truncation" and "text pair" in response.json()["error"]["message"]
    assert upload(bridge.url, PAIR_CSV, text_field="review", truncation="chunk").status_code == 202  # no pair: fine


def test_a_pair_job_on_a_server_that_chunks_by_default_must_choose_another_truncation(tiny_model_dir, classifier,
                                                                                      tmp_path):
    """A server whose --long-text is chunk would refuse every pair: the upload is refused instead, naming
    truncation; sent with truncation truncate it is scored."""
    with ServerThread(server_settings(tiny_model_dir, long_text="chunk"), classifier) as server, \
            BridgeThread(server.target, jobs_dir=tmp_path) as bridge:
        refused = upload(bridge.url, PAIR_CSV, text_field="review", pair_field="aspect")
        assert refused.status_code == 422 and refused.json()["error"]["field"] == "truncation"
        assert "--long-text" in refused.json()["error"]["message"]
        job = upload(bridge.url, PAIR_CSV, text_field="review", pair_field="aspect", truncation="truncate")
        assert job.status_code == 202, job.text
        assert (finished(bridge.url, job.json()["id"])["errors"]) == 1  # only the row without a pair
