"""``python -m tests.support.gated_server <sentiment-server flags>``: the real server process (``server.app.main``:
settings, warm-up, health, SIGTERM handling) with a model the test holds from outside.

Each forward pass first appends a line to ``$SENTIMENT_TEST_HOLD.started`` (so the test knows the model
is busy), then waits while the file ``$SENTIMENT_TEST_HOLD`` exists: the test's own gate, across processes.
A pass that finds the gate closed appends a line to ``$SENTIMENT_TEST_HOLD.held`` before it waits, so a test
that closes the gate while passes run can wait for one that is really held (one that started just before
the close may have found the gate still open)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import server.app
from server.core.classifier import SequenceClassifier

HOLD = Path(os.environ["SENTIMENT_TEST_HOLD"])
STARTED = HOLD.with_name(HOLD.name + ".started")
HELD = HOLD.with_name(HOLD.name + ".held")


def hold(encodings) -> None:
    with STARTED.open("a") as started:
        started.write(f"{len(encodings)}\n")
    announced = False
    while HOLD.exists():  # only a pass that has said so waits: no race with the test's close
        if not announced:
            with HELD.open("a") as held:
                held.write(f"{len(encodings)}\n")
            announced = True
        time.sleep(0.01)


class HeldClassifier(SequenceClassifier):
    """Every forward pass of its runner (the batches, the warm-up) waits at the test's gate first."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        logits = self.runner.logits

        def held_logits(encodings):
            hold(encodings)
            return logits(encodings)

        self.runner.logits = held_logits


if __name__ == "__main__":
    server.app.SequenceClassifier = HeldClassifier  # what load_classifier builds
    server.app.main()
