"""The README's benchmark tables, written from ``bench/results/*.json`` so the two never disagree.

    python -m bench.summary            # print the section
    python -m bench.summary --write    # replace it in README.md (between the bench markers)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.load import REFUSED
from bench.run import OVERLOAD_FACTOR, RESULTS, pick

README = Path(__file__).parent.parent / "README.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"
TITLES = {"bert-base": "bert-base-sized model (110M parameters, random weights)",
          "builtin": "built-in model (MiniLM-L6, 22M parameters)"}


def _cell(row: dict | None) -> str:
    if not row:
        return "-"
    refused = sum(v for k, v in row["errors"].items() if k in REFUSED)
    note = f", {refused} refused" if refused else ""
    return f"{row['texts_per_s']} /s, p99 {row['p99_ms']:.0f} ms{note}"


def model_section(report: dict, kind: str = "short") -> list[str]:
    systems = [s for s in ("seed", "grpc", "bridge") if any(r["system"] == s for r in report["rows"])]
    names = {"seed": "seed (Flask, slow tokenizer, fp32, one text per request)", "grpc": "gRPC server", "bridge": "REST bridge"}
    concurrencies = sorted({r["concurrency"] for r in report["rows"] if r["texts"] == kind and r["system"] in systems})
    raw = report["raw"][kind]
    server = report["server"]
    engine = f"{server.get('engine', 'torch')} {server['dtype']}"
    lines = [f"**{TITLES.get(report['model'], report['model'])}** on {report['device']}, {kind} texts: texts/s and p99 latency "
             f"(`{report['command']}`; {report['machine']}; server engine {engine}):", "",
             "| callers | " + " | ".join(names[s] for s in systems) + " | gRPC: server CPU per call (outside the forward pass), "
             "load generator CPU per call, avg batch |",
             "|---" * (len(systems) + 2) + "|"]
    for c in concurrencies:
        grpc = pick(report, "grpc", kind, c) or {}
        load = grpc.get("load_generator_cpu_ms_per_call")
        cpu = (f"{grpc['server_cpu_ms_per_call']:.2f} ms ({grpc['request_path_cpu_ms_per_call']:.2f} ms), "
               + (f"{load:.2f} ms, " if load is not None else "") + f"{grpc['avg_batch_size']}"
               if "server_cpu_ms_per_call" in grpc else "-")
        lines.append(f"| {c} | " + " | ".join(_cell(pick(report, s, kind, c)) for s in systems) + f" | {cpu} |")
    engine_rows = [r for r in report["rows"] if r["system"].startswith("grpc ") and r["texts"] == kind]
    if engine_rows:
        lines += ["", "Each engine on its own (gRPC server, " + kind + " texts): " + "; ".join(
            f"{r['system'].removeprefix('grpc ')} at {r['concurrency']} caller{'s' if r['concurrency'] > 1 else ''} "
            f"{r['texts_per_s']} /s, p50 {r['p50_ms']:.1f} ms" for r in engine_rows) + "."]
    floor = pick(report, "transport floor", kind, 32)
    if floor:
        lines += ["", f"Transport floor (a bare grpc.aio server answering a constant, 32 callers): {floor['texts_per_s']} /s, "
                      f"{floor['server_cpu_ms_per_call']:.2f} ms of server CPU per call."]
    raws = [("auto", raw), *report.get("raw_engines", {}).get(kind, {}).items()]
    lines += ["", "Raw model limit (same process, no server, length-sorted batches): " + "; ".join(
        f"{name} ({r.get('engine', 'torch')} {r.get('dtype', '')}) {r['texts_per_s']:.1f} texts/s at batch {r['best_batch_size']}, "
        f"one text {r['single_forward_p50_ms']:.1f} ms" for name, r in raws) + ".", ""]
    lines.append("Ratios: " + "; ".join(f"{k} **{v}**" for k, v in report["ratios"].items()) + ".")
    if report["overload"] and "offered_per_s" not in report["overload"][0]:  # runs before the open-loop overload
        lines += ["", "Overload (closed loop: 128 callers against a 32-text queue, refused callers back off 50 ms):", ""]
        lines += [f"- {o['system']}: {o['ok']} accepted, {o['refused']} refused at once (p99 {o['refused_p99_ms']:.0f} ms), "
                  f"accepted p99 {o['accepted_p99_ms']:.0f} ms" for o in report["overload"]]
        return lines + [""]
    lines += ["", f"{report.get('overload_factor', OVERLOAD_FACTOR):g}x overload (open loop, default admission bounds):", "",
              "| system | offered /s | ok /s | refused | shed by gRPC core | other | accepted p50 ms | accepted p99 ms | refused p99 ms |",
              "|---|---|---|---|---|---|---|---|---|"]
    for o in report["overload"]:
        lines.append(f"| {o['system']} | {o['offered_per_s']} | {o['ok_per_s']} | {o['refused']} of {o['sent']} | "
                     f"{o['shed']} | {sum(o['other'].values())} | {o['accepted_p50_ms']:.0f} | {o['accepted_p99_ms']:.0f} | "
                     f"{o['refused_p99_ms']:.0f} |")
    return lines + [""]


def section(results: Path = RESULTS) -> str:
    lines = [START, ""]
    for stem in ("bert-base-cpu", "builtin-cpu", "bert-base-cuda", "builtin-cuda"):
        path = results / f"{stem}.json"
        if path.is_file():
            lines += model_section(json.loads(path.read_text()))
    return "\n".join(lines + [END])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="replace the section in README.md")
    args = parser.parse_args(argv)
    text = section()
    if not args.write:
        print(text)
        return
    readme = README.read_text()
    start, end = readme.index(START), readme.index(END) + len(END)
    README.write_text(readme[:start] + text + readme[end:])


if __name__ == "__main__":
    main()
