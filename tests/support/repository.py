"""Model repositories for tests: tiny models with different seeds (so each version answers differently), the
server in front of a repository, and gates on the models it loads."""

from __future__ import annotations

import shutil
import threading
from collections import defaultdict
from pathlib import Path

from tests.support.helpers import LABELS, ServerThread, build_tiny_model, server_settings

PROBE_TEXT = "i love this film"


def publish(model_folder: Path, version: str | int, seed: int, labels: list[str] = LABELS) -> Path:
    """A version of a tiny model, written beside the folder first and renamed into place (as the README says
    to publish one: the server never sees half a checkpoint)."""
    staging = build_tiny_model(model_folder / f".staging-{version}", seed=seed, labels=labels)
    target = model_folder / str(version)
    staging.rename(target)
    return target


def build_repository(root: Path, models: dict[str, dict[int, int]]) -> Path:
    """``models``: name -> {version: seed}."""
    for name, versions in models.items():
        for version, seed in versions.items():
            publish(root / name, version, seed)
    return root


def copy_version(source: Path, model_folder: Path, version: str | int) -> Path:
    staging = model_folder / f".staging-{version}"
    shutil.copytree(source, staging)
    return staging.rename(model_folder / str(version))


def reference_logits(model_dir: Path, text: str = PROBE_TEXT) -> list[float]:
    """What a version answers for ``text``, computed offline (the server runs the same float32 torch model)."""
    from server.core.classifier import SequenceClassifier

    classifier = SequenceClassifier(str(model_dir), device="cpu", dtype="float32", engine="torch")
    return classifier.predict_logits([text])[0].tolist()


def which(logits: list[float], references: dict[str, list[float]], tolerance: float = 1e-4) -> str:
    """The version whose reference logits these are ("?" when none)."""
    for version, expected in references.items():
        if all(abs(a - b) <= tolerance for a, b in zip(logits, expected)):
            return version
    return "?"


def repository_server(root: Path, *models: str, **overrides) -> ServerThread:
    """The real server on a repository (``--model ROOT``, or the ``models`` given), model control explicit,
    torch float32 (no engine timing: these tests are about versions, not engines)."""
    values = dict(model_control="explicit", engine="torch")
    values.update(overrides)
    settings = server_settings(str(root), **values)
    if models:
        settings = settings.model_copy(update={"model": list(models)})
    return ServerThread(settings, None)


class ModelGates:
    """Gates on the classifiers a server in this process loads: a model loaded from a source held here
    waits at its gate before every forward pass (warm-up included). ``install(monkeypatch)`` makes the
    server build them (``server.app.SequenceClassifier``)."""

    def __init__(self):
        self.gates: dict[str, threading.Event] = {}
        self.passes: dict[str, int] = defaultdict(int)

    def hold(self, source: Path) -> threading.Event:
        """A gate (closed) for ``source``: ``.set()`` it to let the model run."""
        gate = self.gates[str(source)] = threading.Event()
        return gate

    def install(self, monkeypatch) -> None:
        import server.app
        from server.core.classifier import SequenceClassifier

        gates = self

        class GatedClassifier(SequenceClassifier):
            def __init__(self, source, **kwargs):
                super().__init__(source, **kwargs)
                gate = gates.gates.get(str(source))
                if gate is not None:
                    logits = self.runner.logits

                    def held(encodings):
                        gates.passes[str(source)] += 1
                        gate.wait(60)
                        return logits(encodings)

                    self.runner.logits = held

        monkeypatch.setattr(server.app, "SequenceClassifier", GatedClassifier)
