"""``sentiment``: the command-line tool over ``SentimentClient``.

    sentiment predict "I love this"          # or lines on stdin: cat texts.txt | sentiment predict
    sentiment predict --json "meh"
    sentiment info | sentiment health
    sentiment score reviews.csv -o scored.jsonl   # CSV or JSONL with a text column, progress bar
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import sys
from pathlib import Path

from tqdm import tqdm

from clients.client import SentimentClient
from clients.errors import SentimentError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sentiment", description="Call the sentiment gRPC service.")
    parser.add_argument("--target", default=os.environ.get("SENTIMENT_TARGET", "localhost:50051"),
                        help="gRPC target: host:port, dns:///name:port or a comma-separated list (env SENTIMENT_TARGET)")
    parser.add_argument("--timeout", type=float, default=float(os.environ.get("SENTIMENT_TIMEOUT", "10")),
                        help="deadline of each call in seconds (env SENTIMENT_TIMEOUT)")
    parser.add_argument("--token", default=os.environ.get("SENTIMENT_TOKEN"), help="bearer token (env SENTIMENT_TOKEN)")
    parser.add_argument("--ca-cert", default=os.environ.get("SENTIMENT_CA_CERT"), help="CA certificate: use TLS (env SENTIMENT_CA_CERT)")
    parser.add_argument("--client-cert", default=os.environ.get("SENTIMENT_CLIENT_CERT"), help="client certificate for mTLS")
    parser.add_argument("--client-key", default=os.environ.get("SENTIMENT_CLIENT_KEY"), help="client key for mTLS")
    commands = parser.add_subparsers(dest="command", required=True)

    predict = commands.add_parser("predict", help="classify texts given as arguments, or one per stdin line")
    predict.add_argument("texts", nargs="*", help="texts (default: read lines from stdin)")
    predict.add_argument("--json", action="store_true", help="print one JSON object per text")
    predict.add_argument("--truncation", choices=["truncate", "reject"], default="truncate")

    commands.add_parser("info", help="show the served model and its settings")
    commands.add_parser("health", help="show the server's health status (exit 1 unless SERVING)")

    score = commands.add_parser("score", help="score a CSV or JSONL file into JSONL")
    score.add_argument("input", type=Path, help=".csv or .jsonl file")
    score.add_argument("-o", "--output", type=Path, help="output .jsonl (default: stdout)")
    score.add_argument("--text-field", default="text", help="column or key holding the text")
    score.add_argument("--batch-size", type=int, default=32, help="texts per PredictBatch call")
    return parser


def _read_rows(path: Path, text_field: str):
    if path.suffix.lower() in {".jsonl", ".ndjson", ".json"}:
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    yield json.loads(line)
    else:
        with path.open(encoding="utf-8", newline="") as handle:
            yield from csv.DictReader(handle)


def _human(text: str, prediction) -> str:
    scores = "  ".join(f"{k} {v:.3f}" for k, v in prediction.scores.items())
    return f"{prediction.label:<9} ({scores})  {text[:80]}"


def _score_file(client: SentimentClient, args, out) -> None:
    rows = list(_read_rows(args.input, args.text_field))
    missing = next((i for i, r in enumerate(rows) if not isinstance(r.get(args.text_field), str)), None)
    if missing is not None:
        raise SystemExit(f"{args.input}: row {missing + 1} has no string field {args.text_field!r}")
    with tqdm(total=len(rows), unit="text", desc="scoring", file=sys.stderr) as bar:
        for start in range(0, len(rows), args.batch_size):
            chunk = rows[start : start + args.batch_size]
            predictions = client.predict_batch([r[args.text_field] for r in chunk])
            for row, prediction in zip(chunk, predictions):
                out.write(json.dumps({**row, **prediction.to_dict()}, ensure_ascii=False) + "\n")
            bar.update(len(chunk))


def main(argv: list[str] | None = None) -> int:
    try:
        code = _run(argv)
        sys.stdout.flush()  # here, so that a closed pipe is found inside the try
        return code
    except BrokenPipeError:
        # the reader went away (`sentiment info | head`): end quietly, as Unix tools do, with the status a
        # shell shows for them (128 + SIGPIPE); stdout goes to /dev/null so the flush at exit finds no pipe
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE


def _run(argv: list[str] | None) -> int:
    args = _parser().parse_args(argv)
    client = SentimentClient(args.target, timeout=args.timeout, token=args.token, ca_cert=args.ca_cert,
                             client_cert=args.client_cert, client_key=args.client_key)
    try:
        with client:
            if args.command == "predict":
                texts = args.texts or [line.rstrip("\n") for line in sys.stdin if line.strip()]
                for start in range(0, len(texts), 64):
                    chunk = texts[start : start + 64]
                    for text, p in zip(chunk, client.predict_batch(chunk, truncation=args.truncation)):
                        print(json.dumps({"text": text, **p.to_dict()}, ensure_ascii=False) if args.json else _human(text, p))
            elif args.command == "info":
                print(json.dumps(client.model_info().to_dict(), indent=2))
            elif args.command == "health":
                status = client.health()
                print(status)
                return 0 if status == "SERVING" else 1
            elif args.command == "score":
                if args.output:
                    with args.output.open("w", encoding="utf-8") as out:
                        _score_file(client, args, out)
                else:
                    _score_file(client, args, sys.stdout)
    except SentimentError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
