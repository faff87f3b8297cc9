"""The benchmark harness runs end to end (quick mode, tiny model, results in a temporary folder).
It checks that the harness works and reports every system, not any speed: speed is never asserted."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("aiohttp")
pytest.importorskip("matplotlib")


def test_quick_benchmark_reports_every_system_and_writes_table_and_plot(tiny_model_dir, tmp_path):
    from bench.run import main

    main(["--models", str(tiny_model_dir), "--concurrency", "1", "4", "--kinds", "short", "--quick",
          "--out", str(tmp_path)])
    stem = tmp_path / f"{tiny_model_dir.name}-cpu"
    report = json.loads(stem.with_suffix(".json").read_text())
    assert {r["system"] for r in report["rows"]} == {"seed", "grpc", "bridge"}
    assert all(r["ok"] == r["requests"] for r in report["rows"]), report["rows"]
    assert report["raw"]["short"]["texts_per_s"] > 0
    overload = {o["system"]: o for o in report["overload"]}
    assert overload["grpc"]["refused"] + overload["grpc"]["ok"] == overload["grpc"]["attempts"]
    assert overload["bridge"]["other"] == {}
    assert "| seed | short | 4 |" in stem.with_suffix(".md").read_text()
    assert stem.with_suffix(".png").stat().st_size > 0
