"""The benchmark harness runs end to end (quick mode, tiny model, results in a temporary folder).
It checks that the harness works and reports every system, not any speed: no rate, time or CPU figure is
asserted here (the benchmark reports them: ``make bench``), only what does not depend on how fast this
machine is that minute (which systems and points are reported, that every call is accounted for and ends
with an answer or a refusal, the tables and the plot).

The bench extras (aiohttp, matplotlib) are installed by ``make install``: without them this module is
skipped while collected, which fails the run under ``CI=true`` (tests/support/ci_skips.py)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("aiohttp")
pytest.importorskip("matplotlib")


def test_quick_benchmark_reports_every_system_and_writes_table_and_plot(tiny_model_dir, tmp_path):
    from bench.run import main

    main(["--models", str(tiny_model_dir), "--concurrency", "1", "32", "--kinds", "short", "--quick",
          "--overload-seconds", "2", "--overload-factor", "8", "--out", str(tmp_path)])
    stem = tmp_path / f"{tiny_model_dir.name}-cpu"
    report = json.loads(stem.with_suffix(".json").read_text())
    served = report["server"]["engine"]  # what auto chose: one engine, or both routed by batch size
    alone = {f"grpc {engine}" for engine in ("torch", "onnxruntime") if engine != served}
    assert {r["system"] for r in report["rows"]} == {"seed", "grpc", "bridge", "transport floor"} | alone
    assert {(r["texts"], r["concurrency"]) for r in report["rows"]} == {("short", 1), ("short", 32)}
    # closed loop: every call answered, and only a refusal (admission control, when this shared machine
    # stalls) may stand in for an answer; nothing ends any other way
    for r in report["rows"]:
        assert r["ok"] > 0 and r["ok"] + sum(r["errors"].values()) == r["requests"], r
        assert set(r["errors"]) <= {"RESOURCE_EXHAUSTED", "429"}, r
    # every column the tables and docs/performance.md read is there (its values are measurements: not checked)
    assert "texts_per_s" in report["raw"]["short"] and set(report["raw_engines"]["short"]) == {"torch", "onnxruntime"}
    for r in report["rows"]:
        assert "load_generator_cpu_ms_per_call" in r, r
        if r["system"].startswith("grpc") or r["system"] == "bridge":
            assert {"server_cpu_ms_per_call", "request_path_cpu_ms_per_call", "forward_cpu_ms_per_call",
                    "avg_batch_size"} <= set(r), r
    assert report["server"]["batch_costs"]
    overload = {o["system"]: o for o in report["overload"]}
    for system in ("grpc", "bridge"):  # open-loop overload: every call sent is accounted for, and ends as an
        o = overload[system]           # answer, a refusal, or shed in gRPC core (docs/reliability.md), never otherwise
        assert o["ok"] + o["refused"] + o["shed"] + sum(o["other"].values()) == o["sent"] > 0, o
        assert o["other"] == {}, o
    text = stem.with_suffix(".md").read_text()
    assert "| seed | short | 32 |" in text and "Overload (8x, open loop" in text
    assert stem.with_suffix(".png").stat().st_size > 0


def test_readme_section_is_written_from_the_results_json(tmp_path):
    from bench.summary import model_section

    report = {"model": "tiny", "device": "cpu", "command": "python -m bench.run", "machine": "test machine",
              "server": {"dtype": "float32"},
              "raw": {"short": {"texts_per_s": 100.0, "best_batch_size": 8, "single_forward_p50_ms": 2.0}},
              "rows": [{"system": s, "texts": "short", "concurrency": 4, "texts_per_s": v, "p99_ms": 12.0,
                        "errors": {"RESOURCE_EXHAUSTED": 3} if s == "grpc" else {}}
                       for s, v in (("seed", 10.0), ("grpc", 80.0), ("bridge", 70.0))],
              "ratios": {"short: grpc / raw limit at C=32": 0.8},
              "overload": [{"system": "grpc", "offered_per_s": 320.0, "ok_per_s": 90.0, "refused": 900, "sent": 1200,
                            "shed": 40, "other": {}, "accepted_p50_ms": 300.0, "accepted_p99_ms": 900.0, "refused_p99_ms": 5.0}]}
    text = "\n".join(model_section(report))
    assert "| 4 | 10.0 /s, p99 12 ms | 80.0 /s, p99 12 ms, 3 refused | 70.0 /s, p99 12 ms | - |" in text
    assert "| grpc | 320.0 | 90.0 | 900 of 1200 | 40 | 0 | 300 | 900 | 5 |" in text
    assert "grpc / raw limit at C=32 **0.8**" in text


def test_ceilings_follow_from_the_cpu_each_process_spends_per_call():
    """With every core busy, a system's rate goes as 1 / (CPU per call of everything on the machine): the
    ceilings printed beside the measured ratios are that arithmetic on the measured CPU columns."""
    from bench.run import ratios

    def point(system, texts_per_s, server, request_path, load):
        return {"system": system, "texts": "short", "concurrency": 32, "texts_per_s": texts_per_s,
                "server_cpu_ms_per_call": server, "request_path_cpu_ms_per_call": request_path,
                "load_generator_cpu_ms_per_call": load}

    report = {"cores": 2, "raw": {"short": {"texts_per_s": 400.0, "engine": "onnxruntime", "dtype": "int8"}},
              "rows": [point("grpc", 300.0, 5.5, 0.5, 0.5), point("bridge", 240.0, 5.5, 0.5, 1.5)]}
    out = ratios(report)
    assert out["short: bridge / grpc at C=32"] == 0.8
    # a free bridge still leaves the HTTP load generator's extra CPU: (5.5 + 0.5) / (5.5 + 1.5)
    assert out["short: bridge / grpc at C=32 if the bridge took no CPU (ceiling from CPU per call)"] == 0.86
    # the raw limit's 5 ms of CPU per text, plus 0.5 of request path and 0.5 of load generator
    assert out["short: grpc / raw at C=32 if the forward pass cost what it does offline (ceiling from CPU per call)"] == 0.83
    report["rows"][1]["errors"] = {"429": 12}  # refused calls cost little: no ceiling from that point
    assert not any("bridge took no CPU" in key for key in ratios(report))


def test_a_full_run_gives_each_point_seconds_of_load_and_a_quick_run_stays_quick():
    from bench.run import count_for

    assert count_for(32, quick=False) == 256  # 8 rounds of every caller
    assert count_for(32, quick=False, min_calls=1400) == 1400  # ~3 s at a raw limit of 466 texts/s
    assert count_for(1, quick=False, min_calls=100) == 240
    assert count_for(32, quick=True, min_calls=1400) == 96  # make test's quick run ignores it
    assert count_for(32, quick=False, device="cuda", min_calls=1000) == 2048  # the GPU's own floor is higher


def test_the_admission_probe_reports_both_edges_of_the_bound(tiny_model_dir, tmp_path):
    """bench.admission (the probe behind docs/performance.md's admission table) on the tiny model: the
    64-caller point answers every call it counts, and the overload offers the factor asked."""
    from bench.admission import probe

    result = probe(tiny_model_dir, calls=64, overload_seconds=1.0, factor=4.0, logs=tmp_path)
    assert result["answered_at_64"] == result["calls_at_64"] == 64  # each call answered: OK or refused
    # the overload offers the factor times what 32 callers carried (both as measured: their size is not checked)
    assert result["overload_offered_per_s"] == pytest.approx(4.0 * result["texts_per_s_at_32"], abs=0.5)
    assert {"overload_ok_per_s", "overload_accepted_p50_ms", "overload_accepted_p99_ms",
            "overload_refused_p99_ms", "refused_at_64"} <= set(result)


def test_the_admission_probe_can_offer_a_fixed_rate(tiny_model_dir, tmp_path):
    """Variants compared at one offered rate (--overload-rate), not at a multiple of a rate that moves with
    the machine."""
    from bench.admission import probe

    result = probe(tiny_model_dir, calls=32, overload_seconds=1.0, factor=4.0, logs=tmp_path, rate=300.0)
    assert result["overload_offered_per_s"] == 300.0
