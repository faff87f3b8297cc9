"""The ``sentiment`` command-line tool against a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from clients.cli import main
from tests.support.helpers import LABELS


def test_predict_arguments_human_and_json(grpc_server, capsys):
    assert main(["--target", grpc_server.target, "predict", "i love this", "bad film"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].split()[0] in LABELS and "i love this" in lines[0]
    assert main(["--target", grpc_server.target, "predict", "--json", "i love this"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["text"] == "i love this" and record["label"] == LABELS[record["predicted_class"]]


def test_predict_reads_stdin_lines(grpc_server, capsys, monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("good day\n\nbad film\n"))
    assert main(["--target", grpc_server.target, "predict", "--json"]) == 0
    assert [json.loads(l)["text"] for l in capsys.readouterr().out.splitlines()] == ["good day", "bad film"]


def test_info_and_health(grpc_server, capsys):
    assert main(["--target", grpc_server.target, "info"]) == 0
    assert json.loads(capsys.readouterr().out)["labels"] == LABELS
    assert main(["--target", grpc_server.target, "health"]) == 0
    assert capsys.readouterr().out.strip() == "SERVING"


def test_score_csv_into_jsonl_keeping_the_input_columns(grpc_server, tmp_path):
    source = tmp_path / "reviews.csv"
    source.write_text("id,text\n" + "".join(f"{i},good film number {i}\n" for i in range(70)))
    out = tmp_path / "scored.jsonl"
    assert main(["--target", grpc_server.target, "score", str(source), "-o", str(out), "--batch-size", "16"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == [str(i) for i in range(70)]
    assert all(r["label"] in LABELS for r in rows)


def test_score_with_a_pair_field_reads_each_rows_pair(grpc_server, client, tmp_path):
    """--pair-field: each row is scored as predict(text, text_pair=its pair); a file with a row whose pair is blank
    is refused before anything is written (the server would refuse a blank pair)."""
    rows = [("the food was good but the service was bad", "service"),
            ("the food was good but the service was bad", "food"), ("i love this film", "the night")]
    source = tmp_path / "aspects.jsonl"
    source.write_text("".join(json.dumps({"id": i, "review": t, "aspect": p}) + "\n" for i, (t, p) in enumerate(rows)))
    out = tmp_path / "scored.jsonl"
    assert main(["--target", grpc_server.target, "score", str(source), "-o", str(out), "--text-field", "review",
                 "--pair-field", "aspect", "--batch-size", "2"]) == 0
    scored = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["id"], r["aspect"]) for r in scored] == [(i, p) for i, (_, p) in enumerate(rows)]
    for (text, pair), record in zip(rows, scored):
        expected = client.predict(text, text_pair=pair)
        assert (record["label"], record["num_tokens"]) == (expected.label, expected.num_tokens)
        assert record["scores"] == pytest.approx(expected.scores, abs=1e-5)
    assert scored[0]["scores"] != pytest.approx(client.predict(rows[0][0]).scores, abs=1e-4)

    blank = tmp_path / "blank.csv"
    blank.write_text("text,aspect\ngood film,plot\nbad film,\n")
    refused = tmp_path / "refused.jsonl"
    with pytest.raises(SystemExit, match="row 2 has no text pair in 'aspect'"):
        main(["--target", grpc_server.target, "score", str(blank), "-o", str(refused), "--pair-field", "aspect"])
    assert not refused.exists()


def test_score_truncation_is_sent_for_every_row(grpc_server, tmp_path, capsys):
    source = tmp_path / "long.csv"
    source.write_text("text\nshort one\n" + "good " * 300 + "\n")  # over the token limit, under the characters one
    out = tmp_path / "scored.jsonl"
    assert main(["--target", grpc_server.target, "score", str(source), "-o", str(out), "--truncation", "truncate"]) == 0
    assert [json.loads(line)["truncated"] for line in out.read_text().splitlines()] == [False, True]
    assert main(["--target", grpc_server.target, "score", str(source), "-o", str(out), "--truncation", "reject"]) == 2
    assert "INVALID_ARGUMENT" in capsys.readouterr().err


def test_errors_exit_non_zero_with_a_message(grpc_server, capsys):
    assert main(["--target", grpc_server.target, "predict", ""]) == 2
    assert "INVALID_ARGUMENT" in capsys.readouterr().err


def test_a_closed_pipe_ends_the_cli_quietly(grpc_server):
    """`sentiment info | head`: the reader may be gone before the output is written (here, always)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run([sys.executable, "-m", "clients.cli", "--target", grpc_server.target, "info"],
                                stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(write_end)
    assert result.stderr == ""  # no BrokenPipeError traceback
    assert result.returncode == 141  # what a shell reports for a Unix tool ended by SIGPIPE


def run_cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    """``python -m clients.cli`` configured by ``env`` alone (no SENTIMENT_* variable of the test's own)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SENTIMENT_")}
    return subprocess.run([sys.executable, "-m", "clients.cli", *args], env={**clean, **env}, capture_output=True,
                          text=True, timeout=120)


def test_each_cli_environment_variable_takes_effect(tiny_model_dir, classifier, tmp_path):
    """A server that needs all of them (TLS with the test's CA, a client certificate, a bearer token): the CLI
    configured by SENTIMENT_TARGET, SENTIMENT_TIMEOUT, SENTIMENT_TOKEN, SENTIMENT_CA_CERT, SENTIMENT_CLIENT_CERT
    and SENTIMENT_CLIENT_KEY alone is answered, with the deadline the variable sets (30 s, not the default 10 s);
    without the token, the CA or the client certificate it is refused."""
    from tests.support.certs import make_pki
    from tests.support.helpers import ServerThread, server_settings

    pki = make_pki(tmp_path)
    settings = server_settings(tiny_model_dir, tls_cert=pki["server_cert"], tls_key=pki["server_key"],
                               tls_client_ca=pki["ca"], auth_token="cli-token")
    with ServerThread(settings, classifier) as server:
        core, deadlines = server.running.core, []
        predict = core.predict

        async def recording_predict(texts, options, timeout=None, **pairs):
            deadlines.append(timeout)
            return await predict(texts, options, timeout, **pairs)

        core.predict = recording_predict
        env = {"SENTIMENT_TARGET": f"127.0.0.1:{server.port}", "SENTIMENT_TIMEOUT": "30", "SENTIMENT_TOKEN": "cli-token",
               "SENTIMENT_CA_CERT": str(pki["ca"]), "SENTIMENT_CLIENT_CERT": str(pki["client_cert"]),
               "SENTIMENT_CLIENT_KEY": str(pki["client_key"])}
        answered = run_cli(env, "predict", "--json", "i love this")
        assert answered.returncode == 0, answered.stderr
        assert json.loads(answered.stdout)["label"] in LABELS
        # the deadline the server got: the variable's 30 s (a deadline crosses the wire rounded, hence the 0.1)
        assert len(deadlines) == 1 and 10 < deadlines[0] <= 30.1, deadlines
        for dropped, code in ((("SENTIMENT_TOKEN",), "UNAUTHENTICATED"), (("SENTIMENT_CA_CERT",), "UNAVAILABLE"),
                              (("SENTIMENT_CLIENT_CERT", "SENTIMENT_CLIENT_KEY"), "UNAVAILABLE")):
            refused = run_cli({k: v for k, v in env.items() if k not in dropped}, "predict", "i love this")
            assert (refused.returncode, f"error: {code}" in refused.stderr) == (2, True), (dropped, refused.stderr)
        assert len(deadlines) == 1  # no refused call reached the model


def test_a_client_certificate_without_its_key_is_a_usage_error_not_a_crash(tmp_path):
    """gRPC's core aborts the process on a certificate without its key; the CLI refuses the pair first."""
    import subprocess
    import sys

    cert = tmp_path / "client.pem"
    cert.write_text("not used")
    result = subprocess.run([sys.executable, "-m", "clients.cli", "--target", "127.0.0.1:1", "health"],
                            env={**__import__("os").environ, "SENTIMENT_CLIENT_CERT": str(cert)},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "go together" in result.stderr


def test_models_the_model_flag_and_the_repository_commands(tmp_path, capsys):
    from tests.support.repository import build_repository, repository_server

    root = build_repository(tmp_path / "models", {"sentiment": {1: 11}, "reviews": {2: 12}})
    with repository_server(root, f"sentiment={root / 'sentiment'}", f"reviews={root / 'reviews'}") as server:
        target = ["--target", server.target]
        assert main([*target, "models"]) == 0
        listed = [line.split()[:3] for line in capsys.readouterr().out.splitlines()]
        assert listed == [["sentiment", "1", "READY"], ["reviews", "2", "READY"]]
        assert main([*target, "--model", "reviews:2", "info"]) == 0
        info = json.loads(capsys.readouterr().out)
        assert (info["name"], info["version"]) == ("reviews", "2")
        assert main([*target, "--model", "reviews", "predict", "--json", "good"]) == 0
        assert json.loads(capsys.readouterr().out)["label"] in LABELS
        assert main([*target, "--model", "reviews:9", "predict", "good"]) == 2
        assert "NOT_FOUND" in capsys.readouterr().err
        assert main([*target, "unload", "reviews"]) == 0
        capsys.readouterr()
        assert main([*target, "load", "reviews"]) == 0
        assert capsys.readouterr().out.strip() == "loaded reviews"
        assert main([*target, "index", "--ready"]) == 0
        assert [line.split()[:3] for line in capsys.readouterr().out.splitlines()] == [
            ["sentiment", "1", "READY"], ["reviews", "2", "READY"]]
        assert main([*target, "unload", "sentiment"]) == 2  # the default model
        assert "FAILED_PRECONDITION" in capsys.readouterr().err
