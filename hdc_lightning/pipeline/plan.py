"""The plan: the distinct stage runs of a recipe's points, in the order they run."""

from __future__ import annotations

import fcntl
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hdc_lightning.config.load import load_config
from hdc_lightning.errors import ConfigError, HDCError
from hdc_lightning.pipeline.identity import HASH_CHARS, digest, stage_identity
from hdc_lightning.pipeline.spec import DONE_FILE, SHARED, PipelineSpec, RatePoint, StageSpec
from hdc_lightning.rundir import last_ckpt_of


@dataclass(frozen=True)
class ImportedStage:
    """A stage directory written by ``hdc import`` (docs/pretrained.md): a source, never run."""

    run_dir: Path

    @property
    def key(self) -> str:
        return f"imported:{self.run_dir}"


@dataclass
class StagePlan:
    """One stage run, and the ladder points that use it."""

    stage: StageSpec
    run_root: Path  # <root>/shared
    config: Path
    overrides: list[str]
    identity: dict
    sources: dict[str, tuple[StagePlan | ImportedStage, str]]  # {attr: (source stage run, prefix)}
    links: dict[str, Path] = field(default_factory=dict)  # {point: readable path linking here}
    key: str = ""  # <stage>-<short hash of the identity>

    def __post_init__(self) -> None:
        self.key = f"{self.stage.name}-{digest(self.identity)[:HASH_CHARS]}"

    @property
    def run_dir(self) -> Path:
        return self.run_root / self.key

    @property
    def identity_file(self) -> Path:
        return self.run_root / f"{self.key}.json"

    @property
    def points(self) -> list[str]:
        return list(self.links)

    def done(self) -> dict | None:
        try:
            return json.loads((self.run_dir / DONE_FILE).read_text())
        except (OSError, json.JSONDecodeError):
            return None

    @property
    def lock_file(self) -> Path:
        return self.run_root / f".{self.key}.lock"

    def running(self) -> bool:
        """Another pipeline holds this stage's lock (it is training it now)."""
        try:
            with open(self.lock_file) as f:
                fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError:
            pass
        return False

    def status(self) -> str:
        if self.done() is not None:
            return "done"
        if self.running():
            return "running"
        return "resumable" if last_ckpt_of(self.run_dir).is_file() else "to do"

    def command(self) -> list[str]:
        """The ``hdc fit`` command for this stage: resume, init_from or a fresh start."""
        args = [f"run.root={self.run_root}", f"run.name={self.key}", *self.overrides]
        if last_ckpt_of(self.run_dir).is_file():
            args.append("run.resume=true")  # full state; init_from would be ignored, so none is passed
        else:
            args.append("run.overwrite=true")  # a stage killed before its first checkpoint starts over
            for attr, (src, prefix) in self.sources.items():
                args += [
                    f"run.init_from.{attr}.ckpt={last_ckpt_of(src.run_dir)}",
                    f"run.init_from.{attr}.prefix={prefix}",
                ]
        return [sys.executable, "-m", "hdc_lightning", "fit", str(self.config), *args]

    def replaced(self, point: str) -> tuple[str, list[str]] | None:
        """(old run, differing keys) when ``point``'s link leads to another run of this stage."""
        link = self.links[point]
        if not link.is_symlink() or Path(os.readlink(link)).name == self.key:
            return None
        old = link.resolve()
        try:
            return old.name, _diff(json.loads(old.with_name(old.name + ".json").read_text())["identity"], self.identity)
        except (OSError, json.JSONDecodeError, KeyError):
            return old.name, []


def _diff(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in _diff(a.get(k), b.get(k), f"{prefix}{k}.")]
    return [prefix.rstrip(".")] if a != b else []


def _stage_overrides(spec: PipelineSpec, st: StageSpec, point: RatePoint) -> list[str]:
    """Pipeline-wide first, then the stage's own, then the point's: later items win."""
    out = [*spec.overrides, *st.overrides, *point.overrides.get(st.name, [])]
    return out + ([f"run.freeze=[{','.join(st.freeze)}]"] if st.freeze else [])


def _source(mine: dict[str, StagePlan], src: dict, path: Path) -> StagePlan | ImportedStage:
    return ImportedStage(path.parent / src["imported"]) if "imported" in src else mine[src["stage"]]


def plan(spec: PipelineSpec, path: Path, points: list[str] | None = None) -> list[StagePlan]:
    """The distinct stage runs of the selected points, in the order they run (point by point)."""
    ladder = spec.ladder or [RatePoint(name="")]
    if points:
        known = [p.name for p in ladder]
        missing = [p for p in points if p not in known]
        if missing:
            raise ConfigError(f"{path}: no rate point {', '.join(missing)}; known: {', '.join(known) or '(no ladder)'}")
        ladder = [p for p in ladder if p.name in points]
    base = Path(spec.root) / spec.name
    runs: dict[str, StagePlan] = {}
    for point in ladder:
        mine: dict[str, StagePlan] = {}  # this point's stage runs by stage name
        for st in spec.stages:
            overrides = _stage_overrides(spec, st, point)
            where = f"{path}: stage '{st.name}'" + (f" of point '{point.name}'" if point.name else "")
            try:
                cfg = load_config(path.parent / st.config, overrides)
            except HDCError as e:
                raise ConfigError(f"{where}: {e}") from None
            sources = {attr: (_source(mine, src, path), src.get("prefix", "")) for attr, src in st.init_from.items()}
            ident = stage_identity(cfg, {a: (s.key, p) for a, (s, p) in sources.items()})
            new = StagePlan(st, Path(spec.root) / SHARED, path.parent / st.config, overrides, ident, sources)
            run = runs.setdefault(new.key, new)
            run.links[point.name] = base / point.name / st.name
            mine[st.name] = run
    return list(runs.values())
