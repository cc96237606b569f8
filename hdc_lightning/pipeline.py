"""Staged runs: the four phases in order, each in its own run directory.

A pipeline YAML names its stages (each a training config plus overrides), which earlier
stages each one initialises from (weights only) and what it freezes, and optionally a
rate ladder (per-point overrides per stage)::

    name: tiny
    stages:
      - {name: lic, config: ../lic/tiny.yaml}
      - {name: vq,  config: ../vq/tiny.yaml}
      - name: drv
        config: ../drv/tiny.yaml
        init_from: {lic: {stage: lic, prefix: model.}, vq: {stage: vq, prefix: model.}}
        freeze: [lic, vq]
    ladder:
      - {name: r1, overrides: {lic: [phase.lmbda=0.0005]}}

Each stage runs as its own ``hdc fit`` process (so Lightning's DDP launcher, torchrun and
SLURM work per stage exactly as for a single phase). Rerunning after an interruption
skips finished stages (``done.json``) and resumes the interrupted one from ``last.ckpt``.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from hdc_lightning.config.load import load_layers, validate
from hdc_lightning.errors import ConfigError, HDCError
from hdc_lightning.rundir import last_ckpt_of

DONE_FILE = "done.json"


@dataclass
class StageSpec:
    name: str = "???"
    config: str = "???"  # relative to the pipeline file
    overrides: list[str] = field(default_factory=list)
    # {phase module attribute: {stage: earlier stage name, prefix: key prefix in its checkpoint}}
    init_from: dict[str, Any] = field(default_factory=dict)
    freeze: list[str] = field(default_factory=list)


@dataclass
class RatePoint:
    name: str = "???"
    overrides: dict[str, Any] = field(default_factory=dict)  # {stage name: [key=value, ...]}


@dataclass
class PipelineSpec:
    name: str = "???"
    root: str = "runs"
    stages: list[StageSpec] = field(default_factory=list)
    ladder: list[RatePoint] = field(default_factory=list)


def load_pipeline(path: str | Path, overrides: list[str] = ()) -> tuple[PipelineSpec, Path]:
    path = Path(path)
    raw = load_layers(path)
    if overrides:
        try:
            raw = OmegaConf.merge(raw, OmegaConf.from_dotlist(list(overrides)))
        except (OmegaConfBaseException, yaml.YAMLError) as e:
            raise ConfigError(f"pipeline overrides: {e}") from None
    try:
        spec: PipelineSpec = OmegaConf.to_object(validate(raw, PipelineSpec, ""))
    except OmegaConfBaseException as e:
        raise ConfigError(f"{path}: {getattr(e, 'full_key', '')}: {str(e).splitlines()[0]}") from None
    if not spec.stages:
        raise ConfigError(f"{path}: 'stages' is empty")
    seen: list[str] = []
    for st in spec.stages:
        if st.name in seen:
            raise ConfigError(f"{path}: stage name '{st.name}' appears twice")
        for attr, src in st.init_from.items():
            if not isinstance(src, dict) or src.get("stage") not in seen:
                raise ConfigError(
                    f"{path}: stages.{st.name}.init_from.{attr} must name an earlier stage ({', '.join(seen) or 'none'})"
                )
        if not (path.parent / st.config).is_file():
            raise ConfigError(f"{path}: stages.{st.name}.config: {path.parent / st.config} not found")
        seen.append(st.name)
    for point in spec.ladder:
        unknown = set(point.overrides) - set(seen)
        if unknown:
            raise ConfigError(f"{path}: ladder.{point.name}.overrides names unknown stages: {', '.join(sorted(unknown))}")
    return spec, path


@dataclass
class StagePlan:
    stage: StageSpec
    run_root: Path
    config: Path
    overrides: list[str]

    @property
    def run_dir(self) -> Path:
        return self.run_root / self.stage.name

    def done(self) -> dict | None:
        marker = self.run_dir / DONE_FILE
        if marker.is_file():
            try:
                return json.loads(marker.read_text())
            except (OSError, json.JSONDecodeError):
                return None
        return None

    def command(self) -> list[str]:
        """The ``hdc fit`` command for this stage: resume, init_from or a fresh start."""
        args = [f"run.root={self.run_root}", f"run.name={self.stage.name}", *self.overrides]
        if last_ckpt_of(self.run_dir).is_file():
            args.append("run.resume=true")  # full state; init_from would be ignored, so none is passed
        else:
            args.append("run.overwrite=true")  # a stage killed before its first checkpoint starts over
            for attr, src in self.stage.init_from.items():
                ckpt = last_ckpt_of(self.run_root / src["stage"])
                args += [f"run.init_from.{attr}.ckpt={ckpt}", f"run.init_from.{attr}.prefix={src.get('prefix', '')}"]
        if self.stage.freeze:
            args.append(f"run.freeze=[{','.join(self.stage.freeze)}]")
        return [sys.executable, "-m", "hdc_lightning", "fit", str(self.config), *args]


def plan(spec: PipelineSpec, path: Path, points: list[str] | None = None) -> list[StagePlan]:
    ladder = spec.ladder or [RatePoint(name="")]
    if points:
        known = [p.name for p in ladder]
        missing = [p for p in points if p not in known]
        if missing:
            raise ConfigError(f"{path}: no rate point {', '.join(missing)}; known: {', '.join(known) or '(no ladder)'}")
        ladder = [p for p in ladder if p.name in points]
    plans = []
    for point in ladder:
        root = Path(spec.root) / spec.name / point.name if point.name else Path(spec.root) / spec.name
        for st in spec.stages:
            extra = list(point.overrides.get(st.name, []))
            plans.append(StagePlan(st, root, path.parent / st.config, list(st.overrides) + extra))
    return plans


def _die_with_parent() -> None:
    # A SIGKILLed pipeline must not leave its stage training on as an orphan.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def run_pipeline(spec: PipelineSpec, path: Path, points: list[str] | None = None, log=print) -> list[StagePlan]:
    plans = plan(spec, path, points)
    for p in plans:
        label = f"{p.run_root}/{p.stage.name}"
        done = p.done()
        if done is not None:
            log(f"[pipeline] {label}: finished at step {done.get('global_step')}, skipped")
            continue
        log(f"[pipeline] {label}: {'resuming' if last_ckpt_of(p.run_dir).is_file() else 'starting'}")
        t0 = time.time()
        proc = subprocess.run(p.command(), preexec_fn=_die_with_parent if os.name == "posix" else None)
        if proc.returncode != 0:
            raise HDCError(f"stage '{p.stage.name}' ({label}) failed with exit status {proc.returncode}; "
                           "rerun the same command to resume it")
        if p.done() is None:
            raise HDCError(f"stage '{p.stage.name}' ({label}) ended without writing {DONE_FILE}")
        log(f"[pipeline] {label}: done in {time.time() - t0:.0f} s")
    return plans
