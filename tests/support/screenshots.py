"""The README's screenshots of the bridge's pages, taken with the browser tests' tooling.

    .venv/bin/python -m tests.support.screenshots            # the built-in model (make model), into docs/img/
    .venv/bin/python -m tests.support.screenshots --model DIR --out /tmp/shots

Starts a real gRPC server and bridge on loopback, drives headless Chromium through the pages and
writes PNGs; everything stops at the end."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from tests.support.browser import DESKTOP, PHONE, chromium, missing_browser

EXAMPLE = ("The battery lasts all day and the screen is gorgeous, but the speakers are thin and the "
           "charger stopped working after a week.")
ROWS = ["I love this place, the staff were so kind", "Terrible service, we waited an hour",
        "The train leaves at nine", "Not bad at all, I would come back", "Worst purchase I have made this year",
        "The food was fine", "Absolutely wonderful evening", "It broke the second day"]


def _server_and_bridge(model_dir: Path, jobs_dir: Path):
    from server.app import load_classifier
    from tests.support.helpers import server_settings
    from tests.support.helpers import ServerThread
    from tests.support.bridge import BridgeThread

    settings = server_settings(model_dir, max_text_chars=20000)
    server = ServerThread(settings, load_classifier(settings)).__enter__()
    return server, BridgeThread(server.target, jobs_dir=jobs_dir).__enter__()


def take(model_dir: Path, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    shots = []
    with tempfile.TemporaryDirectory() as scratch:
        server, bridge = _server_and_bridge(model_dir, Path(scratch) / "jobs")
        try:
            with chromium() as browser:
                page = browser.new_page(viewport=DESKTOP)
                page.set_default_timeout(120_000)
                page.goto(bridge.url)
                page.fill("#text", EXAMPLE)
                page.click("#classify")
                page.wait_for_selector("#result:not([hidden])")
                page.wait_for_selector("#highlights:not([hidden]) mark.word")
                shots.append(out / "playground.png")
                page.screenshot(path=shots[-1], full_page=True)

                source = Path(scratch) / "reviews.csv"
                source.write_text("id,text\n" + "".join(f'{n},"{t}"\n' for n, t in enumerate(ROWS * 4, start=1)))
                page.goto(f"{bridge.url}/score")
                page.set_input_files("#file", str(source))
                page.click("#upload")
                page.wait_for_selector("#job-state:text-is('Done')")
                shots.append(out / "score.png")
                page.screenshot(path=shots[-1], full_page=True)

                page.goto(f"{bridge.url}/docs")
                page.wait_for_selector(".opblock-summary-path[data-path='/predict']")
                shots.append(out / "docs.png")
                page.screenshot(path=shots[-1])

                phone = browser.new_page(viewport=PHONE, device_scale_factor=2)
                phone.set_default_timeout(120_000)
                phone.goto(bridge.url)
                phone.fill("#text", EXAMPLE)
                phone.click("#classify")
                phone.wait_for_selector("#result:not([hidden])")
                phone.wait_for_selector("#highlights:not([hidden]) mark.word")
                shots.append(out / "playground-phone.png")
                phone.screenshot(path=shots[-1], full_page=True)
        finally:
            bridge.__exit__(None, None, None)
            server.__exit__(None, None, None)
    return shots


def main(argv: list[str] | None = None) -> int:
    from server.builtin_model import builtin_model_dir, is_built

    parser = argparse.ArgumentParser(prog="python -m tests.support.screenshots", description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=builtin_model_dir(), help="model directory (default: built-in)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[2] / "docs" / "img")
    args = parser.parse_args(argv)
    problem = missing_browser() or (None if is_built(args.model) else f"no model in {args.model} (make model)")
    if problem:
        print(f"cannot take screenshots: {problem}", file=sys.stderr)
        return 1
    for path in take(args.model, args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
