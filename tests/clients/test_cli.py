"""The ``sentiment`` command-line tool against a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys

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
