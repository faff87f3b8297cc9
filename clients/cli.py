"""``sentiment``: the command-line tool over ``SentimentClient``.

    sentiment predict "I love this"          # or lines on stdin: cat texts.txt | sentiment predict
    sentiment predict --json "meh"
    sentiment predict --top-k 2 --raw-scores "meh"   # the two best labels, ranked by their logits
    sentiment predict --pair battery "The screen is great but the battery dies by noon"   # a text pair (aspect)
    sentiment info | sentiment health
    sentiment score reviews.csv -o scored.jsonl   # CSV or JSONL with a text column (--pair-field: a pair's too)
    sentiment predict --truncation chunk "$(cat long-review.txt)"   # read a long text whole, in windows
    sentiment explain "The battery lasts all day"  # each word coloured by how it pushed the prediction
    sentiment --model reviews:2 predict "meh"     # another of the server's models (NAME or NAME:VERSION)
    sentiment models                              # every loaded model version
    sentiment index | sentiment load reviews | sentiment unload reviews   # the model repository API
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
from clients.types import is_pair


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
    parser.add_argument("--model", default=None, metavar="NAME[:VERSION]",
                        help="the model that answers predict, explain, info and score (default: the server's default)")
    commands = parser.add_subparsers(dest="command", required=True)

    predict = commands.add_parser("predict", help="classify texts given as arguments, or one per stdin line")
    predict.add_argument("texts", nargs="*", help="texts (default: read lines from stdin)")
    predict.add_argument("--json", action="store_true", help="print one JSON object per text")
    predict.add_argument("--truncation", choices=["truncate", "reject", "chunk"], default=None,
                         help="texts over the model's limit: cut, refuse, or read whole in windows (default: the server's)")
    predict.add_argument("--windows", action="store_true", help="with --truncation chunk: print each window's prediction")
    predict.add_argument("--threshold", type=float, default=None,
                         help="multi-label models: predict every label at or above this (server default 0.5)")
    predict.add_argument("--top-k", type=int, default=None, metavar="K",
                         help="show the K best labels, best first (more than the model has: all of them)")
    predict.add_argument("--raw-scores", action="store_true", help="scores are the raw logits, not probabilities")
    predict.add_argument("--pair", default=None, metavar="TEXT",
                         help="a second segment read with every text (an aspect, a hypothesis: models that read two)")

    explain = commands.add_parser("explain", help="show which words pushed the prediction, coloured by sign")
    explain.add_argument("text", help="the text to explain")
    explain.add_argument("--label", default=None, help="the label to explain (default: the predicted one)")
    explain.add_argument("--steps", type=int, default=None, help="Integrated Gradients steps (default: the server's)")
    explain.add_argument("--pair", default=None, metavar="TEXT", help="a second segment read with the text; its words "
                         "are explained too")
    explain.add_argument("--truncation", choices=["truncate", "reject"], default=None)
    explain.add_argument("--json", action="store_true", help="print the explanation as JSON")
    explain.add_argument("--color", choices=["auto", "always", "never"], default="auto",
                         help="colour words (green: towards the label, red: away); never: mark them [+word] / [-word]")

    commands.add_parser("info", help="show the served model and its settings")
    commands.add_parser("health", help="show the server's health status (exit 1 unless SERVING)")
    commands.add_parser("models", help="list every loaded model version (the default model first)")
    index = commands.add_parser("index", help="every model version of the server's repository, with its state")
    index.add_argument("--ready", action="store_true", help="only the versions that are ready")
    for verb, says in (("load", "load or reload a model: the versions its policy selects warm up, then take over"),
                       ("unload", "unload a model once the calls it admitted have finished")):
        command = commands.add_parser(verb, help=says)
        command.add_argument("name", help="the model's name (its folder in the repository)")

    score = commands.add_parser("score", help="score a CSV or JSONL file into JSONL")
    score.add_argument("input", type=Path, help=".csv or .jsonl file")
    score.add_argument("-o", "--output", type=Path, help="output .jsonl (default: stdout)")
    score.add_argument("--text-field", default="text", help="column or key holding the text")
    score.add_argument("--pair-field", default=None, metavar="NAME", help="column or key holding each row's text pair "
                       "(an aspect, a hypothesis), read with its text; every row needs one (default: none)")
    score.add_argument("--truncation", choices=["truncate", "reject", "chunk"], default=None,
                       help="what a text over the model's limit does (default: the server's --long-text)")
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
    if prediction.score is not None:
        answer = f"score {prediction.score:.3f}"
    elif prediction.top is not None:  # --top-k: the best labels, best first
        answer = "  ".join(f"{t.label} {t.score:.3f}" for t in prediction.top)
    else:
        answer = "  ".join(f"{k} {v:.3f}" for k, v in prediction.scores.items())
        if prediction.predicted_labels is not None:
            answer = f"[{', '.join(prediction.predicted_labels)}] {answer}"
    windows = f" {prediction.windows} windows" if prediction.windows else ""
    return f"{prediction.label:<9} ({answer}){windows}  {text[:80]}"


GREEN, RED, BOLD, RESET = "\033[32m", "\033[31m", "\033[1m", "\033[0m"


def render_explanation(text: str, explanation, color: bool, pair: str | None = None) -> str:
    """The text (and its pair, on a line of its own) with each word coloured (or marked) by the sign of its
    attribution, then the strongest words. Words under a tenth of the strongest attribution stay plain."""
    strongest = max((abs(w.attribution) for w in explanation.words), default=0.0) or 1.0
    marked = _marked(text, [w for w in explanation.words if w.segment == 0], strongest, color)
    if pair is not None:
        marked += "\npair: " + _marked(pair, [w for w in explanation.words if w.segment == 1], strongest, color)
    prediction = explanation.prediction
    if prediction.score is not None:
        headline = f"score {prediction.score:.3f}"
    else:
        headline = f"predicted {prediction.label} {prediction.scores.get(prediction.label, 0.0):.3f}"
    top = sorted(explanation.words, key=lambda w: -abs(w.attribution))[:8]
    lines = [f"{headline}; explaining {explanation.target} (convergence delta {explanation.convergence_delta:+.3f})",
             marked,
             "strongest: " + ", ".join(f"{w.word} {w.attribution:+.3f}" for w in top)]
    return "\n".join(lines)


def _marked(text: str, words, strongest: float, color: bool) -> str:
    pieces, cursor = [], 0
    for word in words:
        pieces.append(text[cursor:word.start])
        share = word.attribution / strongest
        segment = text[word.start:word.end]
        if abs(share) >= 0.1:
            if color:
                segment = f"{BOLD if abs(share) >= 0.5 else ''}{GREEN if share > 0 else RED}{segment}{RESET}"
            else:
                segment = f"[{'+' if share > 0 else '-'}{segment}]"
        pieces.append(segment)
        cursor = word.end
    pieces.append(text[cursor:])
    return "".join(pieces)


def _scorable_rows(args) -> list[dict]:
    """The file's rows, each with a string text and, with ``--pair-field``, a pair that is not blank (the server
    refuses a blank pair, and sentiment.v1 would read an empty one as none): else the file is refused."""
    rows = list(_read_rows(args.input, args.text_field))
    missing = next((i for i, r in enumerate(rows) if not isinstance(r.get(args.text_field), str)), None)
    if missing is not None:
        raise SystemExit(f"{args.input}: row {missing + 1} has no string field {args.text_field!r}")
    if args.pair_field is not None:
        blank = next((i for i, r in enumerate(rows) if not is_pair(r.get(args.pair_field))), None)
        if blank is not None:
            raise SystemExit(f"{args.input}: row {blank + 1} has no text pair in {args.pair_field!r} "
                             "(with --pair-field every row needs one)")
    return rows


def _score_file(client: SentimentClient, args, rows: list[dict], out) -> None:
    with tqdm(total=len(rows), unit="text", desc="scoring", file=sys.stderr) as bar:
        for start in range(0, len(rows), args.batch_size):
            chunk = rows[start : start + args.batch_size]
            pairs = None if args.pair_field is None else [r[args.pair_field] for r in chunk]
            predictions = client.predict_batch([r[args.text_field] for r in chunk], text_pairs=pairs,
                                               truncation=args.truncation, **_model(args))
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


def _model(args) -> dict:
    """``--model NAME[:VERSION]`` as the client's keyword arguments."""
    if not args.model:
        return {}
    name, _, version = args.model.partition(":")
    return {"model": name, "model_version": version or None}


def _predict(client: SentimentClient, args) -> int:
    texts = args.texts or [line.rstrip("\n") for line in sys.stdin if line.strip()]
    for start in range(0, len(texts), 64):
        chunk = texts[start : start + 64]
        pairs = None if args.pair is None else [args.pair] * len(chunk)
        predictions = client.predict_batch(chunk, truncation=args.truncation, return_windows=args.windows,
                                           threshold=args.threshold, top_k=args.top_k, raw_scores=args.raw_scores,
                                           text_pairs=pairs, **_model(args))
        for text, p in zip(chunk, predictions):
            shown = {"text": text, **({} if args.pair is None else {"text_pair": args.pair}), **p.to_dict()}
            print(json.dumps(shown, ensure_ascii=False) if args.json
                  else _human(text if args.pair is None else f"{text} | {args.pair}", p))
            if args.windows and not args.json:
                for w in p.window_predictions or []:
                    print(f"  [{w.start}:{w.end}] " + _human(text[w.start:w.end], w.prediction))
    return 0


def _explain(client: SentimentClient, args) -> int:
    explanation = client.explain(args.text, label=args.label, truncation=args.truncation, steps=args.steps,
                                 text_pair=args.pair, **_model(args))
    if args.json:
        print(json.dumps(explanation.to_dict(), ensure_ascii=False))
    else:
        color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty() and not os.environ.get("NO_COLOR"))
        print(render_explanation(args.text, explanation, color, args.pair))
    return 0


def _health(client: SentimentClient, args) -> int:
    status = client.health()
    print(status)
    return 0 if status == "SERVING" else 1


def _score(client: SentimentClient, args) -> int:
    rows = _scorable_rows(args)  # before the output is opened: a refused file leaves no empty output behind
    if args.output:
        with args.output.open("w", encoding="utf-8") as out:
            _score_file(client, args, rows, out)
    else:
        _score_file(client, args, rows, sys.stdout)
    return 0


def _models(client: SentimentClient, args) -> int:
    for model in client.list_models():
        marks = " (unversioned calls)" if model.unversioned else ""
        print(f"{model.name:<20} {model.version:<8} {model.state:<10} {model.info.model_source}{marks}")
    return 0


LOAD_TIMEOUT_SECONDS = 600.0


def _repository(client: SentimentClient, args) -> int:
    from clients.oip import InferenceClient  # the OIP messages only where they are used

    repository = InferenceClient(client)
    if args.command == "index":
        for entry in repository.repository_index(ready=args.ready):
            print(f"{entry.name:<20} {entry.version:<8} {entry.state:<12} {entry.reason}")
    elif args.command == "load":  # a load reads, builds and warms up: it may take minutes
        repository.load_model(args.name, timeout=max(args.timeout, LOAD_TIMEOUT_SECONDS))
        print(f"loaded {args.name}")
    else:
        repository.unload_model(args.name)
        print(f"unloading {args.name}: it stops once the calls it admitted have finished")
    return 0


COMMANDS = {"predict": _predict, "explain": _explain, "health": _health, "score": _score, "models": _models,
            "info": lambda client, args: print(json.dumps(client.model_info(**_model(args)).to_dict(), indent=2)) or 0,
            "index": _repository, "load": _repository, "unload": _repository}


def _run(argv: list[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        client = SentimentClient(args.target, timeout=args.timeout, token=args.token, ca_cert=args.ca_cert,
                                 client_cert=args.client_cert, client_key=args.client_key)
    except ValueError as error:  # settings that cannot work together: a usage error
        parser.error(str(error))
    try:
        with client:
            return COMMANDS[args.command](client, args)
    except SentimentError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
