"""What the server can serve, read from its ``--model`` entries and the folders they name, without loading
anything: the model repository's layout (Triton's and KServe's), the version policy of each model folder,
and the source of every version.

    /models/                       a repository: --model /models (a directory without config.json)
      sentiment/                   a model folder: its name is the model's name
        version_policy.json        optional: {"latest": {"num_versions": 1}} (the default),
                                   {"specific": {"versions": [2]}} (pinned) or {"all": {}}
        1/  config.json, *.safetensors, tokenizer files     a version: a checkpoint directory
        2/  ...
      reviews/
        3/  ...

Folders whose names start with a dot are skipped (copy a new version to ``.3`` and rename it to ``3``
once complete, so the server never sees half a checkpoint); so is any folder of a model folder that is not
a number. ``NAME=FOLDER`` serves one model folder under NAME; ``SOURCE`` and ``NAME[:VERSION]=SOURCE``
where SOURCE is a checkpoint (a directory with config.json, a hub id, or ``builtin``) serve that one
version, as a server of one model always did.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from server.errors import ModelLoadError, NotFound

POLICY_FILE = "version_policy.json"


def version_key(version: str) -> tuple:
    """Versions sort as numbers where they are numbers (10 after 9), others after them by name."""
    return (0, int(version), "") if version.isdigit() else (1, 0, version)


@dataclass(frozen=True)
class VersionPolicy:
    """Triton's ``version_policy``: the latest ``num_versions``, the ``versions`` listed, or all."""

    kind: str = "latest"  # latest, specific or all
    num_versions: int = 1
    versions: tuple[str, ...] = ()

    def select(self, available: list[str]) -> list[str]:
        ordered = sorted(available, key=version_key)
        if self.kind == "all":
            return ordered
        if self.kind == "specific":
            return [v for v in ordered if v in self.versions]
        return ordered[-self.num_versions:]

    def describe(self) -> str:
        if self.kind == "specific":
            return f"pinned to version {', '.join(self.versions)}"
        return "every version" if self.kind == "all" else f"the latest {self.num_versions}"


def read_policy(folder: Path) -> VersionPolicy:
    """The policy of a model folder (``version_policy.json``), or the latest version when it has none."""
    path = folder / POLICY_FILE
    if not path.is_file():
        return VersionPolicy()
    try:
        data = json.loads(path.read_text())
        (kind, body), = data.items()
        if kind == "latest":
            count = body.get("num_versions", 1)
            if not isinstance(count, int) or isinstance(count, bool) or count < 1:
                raise ValueError("num_versions must be a whole number, at least 1")
            return VersionPolicy("latest", num_versions=count)
        if kind == "specific":
            versions = body["versions"]
            if not versions or not all(isinstance(v, (int, str)) and not isinstance(v, bool) for v in versions):
                raise ValueError("versions must be a non-empty list of version numbers")
            return VersionPolicy("specific", versions=tuple(str(v) for v in versions))
        if kind == "all":
            return VersionPolicy("all")
        raise ValueError(f"unknown policy {kind!r}")
    except (ValueError, KeyError, TypeError, AttributeError, OSError) as error:
        raise ModelLoadError(f"{path}: not a version policy ({error}); write {{\"latest\": {{\"num_versions\": 1}}}}, "
                             "{\"specific\": {\"versions\": [2]}} or {\"all\": {}}") from None


@dataclass(frozen=True)
class ModelSource:
    """A model the server knows: one version given on the command line (``fixed``), or a model folder
    whose numbered version folders and policy are read again at every load."""

    name: str
    folder: Path | None = None
    fixed: dict[str, str] = field(default_factory=dict)  # version -> source (a checkpoint, a hub id, builtin)

    def versions(self) -> dict[str, str]:
        """Every version there is now, to its source."""
        if self.folder is None:
            return dict(self.fixed)
        try:
            children = sorted(self.folder.iterdir())
        except OSError:
            return {}
        return {child.name: str(child) for child in children if child.is_dir() and child.name.isdigit()}

    def policy(self) -> VersionPolicy:
        return read_policy(self.folder) if self.folder is not None else VersionPolicy("all")

    def wanted(self) -> dict[str, str]:
        """The versions the policy selects among those there are now (version -> source)."""
        available = self.versions()
        return {v: available[v] for v in self.policy().select(list(available))}


def is_checkpoint(path: Path) -> bool:
    return (path / "config.json").is_file()


def _is_model_folder(path: Path) -> bool:
    return path.is_dir() and any(child.is_dir() and child.name.isdigit() for child in path.iterdir())


def scan_repository(root: Path) -> list[ModelSource]:
    """Every model folder of a repository, by name (hidden folders skipped)."""
    return [ModelSource(child.name, folder=child) for child in sorted(root.iterdir())
            if child.is_dir() and not child.name.startswith(".")]


def read_entry(name: str, version: str, source: str, *, named: bool) -> list[ModelSource]:
    """The models one ``--model`` entry gives (its parsed name, version and source)."""
    if source == "builtin":
        return [ModelSource(name, fixed={version: source})]
    path = Path(source).expanduser()
    if path.is_dir() and not is_checkpoint(path):
        if named and _is_model_folder(path):
            return [ModelSource(name, folder=path)]
        if not named:
            return scan_repository(path)
        raise ModelLoadError(f"--model {name}={source}: neither a checkpoint (config.json) nor a model folder "
                             "(numbered version folders)")
    return [ModelSource(name, fixed={version: source})]


@dataclass
class Catalogue:
    """Every model the server knows, in the order given; the first is the default model."""

    models: dict[str, ModelSource]
    roots: list[Path]  # the repositories, scanned again for new models by ``refresh``
    default: str

    def get(self, name: str) -> ModelSource:
        model = self.models.get(name)
        if model is None:
            raise NotFound(f"no model {name!r} in the repository (known: {', '.join(self.models) or 'none'})",
                               field="model_name")
        return model

    def refresh(self) -> list[str]:
        """Pick up model folders added to the repositories since; returns their names."""
        added = []
        for root in self.roots:
            for model in scan_repository(root) if root.is_dir() else []:
                if model.name not in self.models:
                    self.models[model.name] = model
                    added.append(model.name)
        return added


def read_catalogue(entries: list[tuple[str, str, str, bool]]) -> Catalogue:
    """``entries``: (name, version, source, named) of each ``--model``, in order."""
    models: dict[str, ModelSource] = {}
    roots: list[Path] = []
    for name, version, source, named in entries:
        found = read_entry(name, version, source, named=named)
        if not named and source != "builtin" and Path(source).expanduser().is_dir() \
                and not is_checkpoint(Path(source).expanduser()):
            roots.append(Path(source).expanduser())
            if not found:
                raise ModelLoadError(f"--model {source}: a model repository without a model folder")
        for model in found:
            if model.name in models:
                raise ModelLoadError(f"two models are named {model.name!r}: name one with --model NAME=SOURCE")
            models[model.name] = model
    return Catalogue(models, roots, default=next(iter(models)))
