"""Staged runs: the four phases in order, each stage trained once however many points use it.

A pipeline YAML (recipe) names its stages (a training config plus overrides each), which
earlier stages each one initialises from (weights only) and what it freezes, overrides for
every stage, and optionally a ladder of rate points (per-point overrides per stage); see
``experiments/pipeline/tiny-ladder.yaml`` and docs/pipeline.md.

A stage run is content-addressed: its identity is its resolved config plus the identities of
the stage runs it initialises from, so points, ablation variants or recipes under one root that
resolve to the same stage share one run, and a stage whose config changed is a new run::

    runs/shared/<stage>-<hash>/        the stage run (an ``hdc fit`` run directory)
    runs/shared/<stage>-<hash>.json    the identity it was hashed from
    runs/<name>/<point>/<stage>  ->  ../../shared/<stage>-<hash>    (no ladder: runs/<name>/<stage>)

Each stage runs as its own ``hdc fit`` process (so Lightning's DDP launcher, torchrun and
SLURM work per stage exactly as for a single phase). Rerunning after an interruption
skips finished stages (``done.json``) and resumes the interrupted one from ``last.ckpt``.
"""

from __future__ import annotations

import ctypes
import fcntl
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from hdc_lightning.config.load import load_config, load_layers, validate
from hdc_lightning.errors import ConfigError, HDCError, first_line
from hdc_lightning.fileio import check_component
from hdc_lightning.rundir import is_launcher_rank_zero, last_ckpt_of

DONE_FILE = "done.json"
SHARED = "shared"
HASH_CHARS = 8

# Settings that say where a stage is written or how it is watched, not what it trains: they
# stay out of its identity, so e.g. another checkpoint cadence does not retrain a stage.
# run.init_from of the pipeline is replaced by the identities of the source stage runs.
NOT_IN_IDENTITY = {
    "run": (
        "name",
        "root",
        "resume",
        "overwrite",
        "config_path",  # placement and start mode
        "ckpt_every_n_steps",
        "min_free_mb",
        "rdp_figure",
    ),  # checkpoint cadence, disk check, TB figure
    "trainer": ("log_every_n_steps", "enable_progress_bar"),
    "phase": ("image_every",),  # TensorBoard image grids
}
STAGE_SECTIONS = ("run", "trainer", "data", "model", "phase")  # keys a pipeline-wide override may set
PIPELINE_KEYS = ("name", "root")
SET_BY_PIPELINE = ("run.name", "run.root", "run.resume", "run.overwrite", "run.init_from", "run.freeze")


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
    overrides: list[str] = field(default_factory=list)  # every stage; its own overrides win
    stages: list[StageSpec] = field(default_factory=list)
    ladder: list[RatePoint] = field(default_factory=list)


def _split_overrides(items: list[str]) -> tuple[list[str], list[str]]:
    """CLI items → (pipeline keys such as root=..., overrides of every stage such as data.x=...)."""
    own, stages = [], []
    for item in items:
        key = item.split("=", 1)[0].strip()
        head = key.split(".", 1)[0]
        if "=" not in item or head not in PIPELINE_KEYS + STAGE_SECTIONS:
            raise ConfigError(
                f"pipeline override '{item}': expected {'|'.join(PIPELINE_KEYS)}=VALUE or "
                f"<{'|'.join(STAGE_SECTIONS)}>.KEY=VALUE (applied to every stage)"
            )
        (own if head in PIPELINE_KEYS else stages).append(item)
    return own, stages


def _check_stage_wide(items: list[str], where: str) -> None:
    for item in items:
        key = item.split("=", 1)[0].strip()
        if any(key == k or key.startswith(k + ".") for k in SET_BY_PIPELINE):
            raise ConfigError(f"{where}: '{key}' is set by the pipeline per stage (use root=... for the run folder)")


def _check_stage_kinds(raw: Any, path: Path) -> None:
    """Name the stage key that holds a list where a mapping belongs, or the reverse (OmegaConf's
    own error names neither)."""
    stages = raw.get("stages") if isinstance(raw, DictConfig) else None
    for k, st in enumerate(stages if isinstance(stages, ListConfig) else []):
        for key, kind, example in (
            ("init_from", DictConfig, "{ATTR: {stage: NAME, prefix: KEY_PREFIX}}"),
            ("overrides", ListConfig, "[key=value, ...]"),
            ("freeze", ListConfig, "[ATTR, ...]"),
        ):
            if isinstance(st, DictConfig) and st.get(key) is not None and not isinstance(st.get(key), kind):
                raise ConfigError(f"{path}: stages[{k}].{key} must be {example}")


def load_pipeline(path: str | Path, overrides: list[str] = ()) -> tuple[PipelineSpec, Path]:
    path = Path(path)
    raw = load_layers(path)
    _check_stage_kinds(raw, path)
    own, stage_wide = _split_overrides(list(overrides))
    if own:
        try:
            raw = OmegaConf.merge(raw, OmegaConf.from_dotlist(own))
        except (OmegaConfBaseException, yaml.YAMLError) as e:
            raise ConfigError(f"pipeline overrides: {e}") from None
    try:
        spec: PipelineSpec = OmegaConf.to_object(validate(raw, PipelineSpec, ""))
    except OmegaConfBaseException as e:
        raise ConfigError(f"{path}: {getattr(e, 'full_key', '')}: {first_line(e)}") from None
    spec.overrides = list(spec.overrides) + stage_wide  # the command line after the file
    _check_stage_wide(spec.overrides, f"{path}: overrides")
    check_component(spec.name, f"{path}: name")  # <root>/<name>/ is a folder: no '..', no '/'
    if spec.name == SHARED:
        raise ConfigError(f"{path}: pipeline name '{SHARED}' is reserved for the stage runs")
    if not spec.stages:
        raise ConfigError(f"{path}: 'stages' is empty")
    seen: list[str] = []
    for st in spec.stages:
        check_component(st.name, f"{path}: stages.name")
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
    names = [p.name for p in spec.ladder]
    for point in spec.ladder:
        check_component(point.name, f"{path}: ladder.name")
        for stage, items in point.overrides.items():
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise ConfigError(
                    f"{path}: ladder.{point.name}.overrides.{stage} must be a list of key=value strings, got {items!r}"
                )
        unknown = set(point.overrides) - set(seen)
        if unknown:
            raise ConfigError(
                f"{path}: ladder.{point.name}.overrides names unknown stages: {', '.join(sorted(unknown))}"
            )
        if names.count(point.name) > 1:
            raise ConfigError(f"{path}: ladder point name '{point.name}' appears twice")
    return spec, path


def _schema_defaults(phase_name: str) -> dict:
    from hdc_lightning import registry
    from hdc_lightning.config.schema import Config

    out = OmegaConf.to_container(OmegaConf.structured(Config))
    schema = getattr(registry.get("phase", phase_name).factory, "Config", None)
    out["phase"] = OmegaConf.to_container(OmegaConf.structured(schema)) if schema else {}
    return json.loads(json.dumps(out, default=str))


def _without_defaults(values: Any, defaults: Any) -> Any:
    if not (isinstance(values, dict) and isinstance(defaults, dict)):
        return values
    pruned = {
        k: _without_defaults(v, defaults.get(k)) for k, v in values.items() if k not in defaults or v != defaults[k]
    }
    return {k: v for k, v in pruned.items() if v != {} or k not in defaults}


def stage_identity(cfg: dict, sources: dict[str, tuple[str, str]]) -> dict:
    """The resolved config minus :data:`NOT_IN_IDENTITY`, plus ``{attr: (source key, prefix)}``.

    Settings equal to their schema default are left out, so a code update that adds an option
    (at a default that keeps today's behaviour) does not make every trained stage a new one;
    two configs that resolve to the same values still get the same identity, any other two not."""
    ident = _without_defaults(json.loads(json.dumps(cfg, default=str)), _schema_defaults(cfg["phase"]["name"]))
    for section, keys in NOT_IN_IDENTITY.items():
        for key in keys:
            ident.get(section, {}).pop(key, None)
    ident["init_from_stages"] = {
        attr: {"stage": key, "prefix": prefix} for attr, (key, prefix) in sorted(sources.items())
    }
    return ident


def digest(identity: dict) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass
class StagePlan:
    """One stage run, and the ladder points that use it."""

    stage: StageSpec
    run_root: Path  # <root>/shared
    config: Path
    overrides: list[str]
    identity: dict
    sources: dict[str, tuple[StagePlan, str]]  # {attr: (source stage run, prefix)}
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
            sources = {attr: (mine[src["stage"]], src.get("prefix", "")) for attr, src in st.init_from.items()}
            ident = stage_identity(cfg, {a: (s.key, p) for a, (s, p) in sources.items()})
            new = StagePlan(st, Path(spec.root) / SHARED, path.parent / st.config, overrides, ident, sources)
            run = runs.setdefault(new.key, new)
            run.links[point.name] = base / point.name / st.name
            mine[st.name] = run
    return list(runs.values())


def _die_with_parent() -> None:
    # A SIGKILLed pipeline must not leave its stage training on as an orphan.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _launch(cmd: list[str]) -> int:
    return subprocess.run(cmd, preexec_fn=_die_with_parent if os.name == "posix" else None).returncode


@contextmanager
def _stage_lock(p: StagePlan, log) -> Iterator[None]:
    """One process trains a shared stage: a second pipeline (say ``--point h040`` started beside
    ``--point h025``) waits here, then finds it done. The kernel drops the lock if we die."""
    p.run_root.mkdir(parents=True, exist_ok=True)
    with open(p.lock_file, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"[pipeline] {SHARED}/{p.key}: another pipeline is training it; waiting")
            fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _same_work(p: StagePlan, run_dir: Path) -> bool:
    """Whether a run folder's own ``config.yaml`` resolves to this stage run's identity."""
    try:
        cfg = load_config(run_dir / "config.yaml")
    except HDCError:
        return False
    cfg["run"]["init_from"] = p.identity["run"].get("init_from", {})  # it held the old paths of its sources
    return stage_identity(cfg, {a: (s.key, pre) for a, (s, pre) in p.sources.items()}) == p.identity


def _adopt(p: StagePlan, folder: Path, log) -> None:
    """A stage folder of the layout before shared stages (``runs/<name>/[<point>/]<stage>/``):
    moved into ``shared/`` when it is this work and the first of its kind (so a run trained or
    half-trained by an older version continues), otherwise moved aside. Never deleted."""
    if not p.run_dir.exists() and _same_work(p, folder):
        os.replace(folder, p.run_dir)
        log(f"[pipeline] {folder}: moved to {SHARED}/{p.key} (same config; it continues there)")
        return
    aside, n = folder.with_name(f"{folder.name}.old-layout"), 1
    while aside.exists() or aside.is_symlink():
        aside, n = folder.with_name(f"{folder.name}.old-layout-{n}"), n + 1
    os.replace(folder, aside)
    why = "its stage is already in shared/" if p.run_dir.exists() else "its config differs from the recipe's"
    log(f"[pipeline] {folder}: moved aside to {aside.name} ({why}); not used")


def _link(p: StagePlan, log) -> None:
    """Point every user's readable path at the stage run (atomically)."""
    for link in p.links.values():
        if link.is_dir() and not link.is_symlink():
            _adopt(p, link, log)
        target = os.path.relpath(p.run_dir, link.parent)
        if link.is_symlink() and os.readlink(link) == target:
            continue
        if link.is_symlink():
            log(f"[pipeline] {link}: config changed, now -> {SHARED}/{p.key} (was {Path(os.readlink(link)).name})")
        link.parent.mkdir(parents=True, exist_ok=True)
        tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(target)
        os.replace(tmp, link)


def _write_identity(p: StagePlan) -> None:
    # Beside the run folder, not in it: `hdc fit` owns what is inside (and clears it on overwrite).
    tmp = p.run_root / f".{p.key}.json.{os.getpid()}.tmp"
    tmp.write_text(json.dumps({"key": p.key, "identity": p.identity}, indent=1, sort_keys=True))
    os.replace(tmp, p.identity_file)


def run_pipeline(
    spec: PipelineSpec,
    path: Path,
    points: list[str] | None = None,
    log=print,
    launch: Callable[[list[str]], int] = _launch,
) -> list[StagePlan]:
    plans = plan(spec, path, points)
    rank0 = is_launcher_rank_zero()  # other ranks of a multi-process launch only join the stage
    for p in plans:
        label = f"{SHARED}/{p.key} -> {', '.join(str(Path(spec.name) / pt / p.stage.name) for pt in p.points)}"
        with _stage_lock(p, log) if rank0 else nullcontext():
            if rank0:
                _link(p, log)
                _write_identity(p)
            done = p.done()
            if done is not None:
                log(f"[pipeline] {label}: finished at step {done.get('global_step')}, skipped")
                continue
            log(f"[pipeline] {label}: {'resuming' if last_ckpt_of(p.run_dir).is_file() else 'starting'}")
            t0 = time.time()
            code = launch(p.command())
            if code != 0:
                raise HDCError(
                    f"stage '{p.stage.name}' ({p.run_dir}) failed with exit status {code}; "
                    "rerun the same command to resume it"
                )
            if p.done() is None:
                raise HDCError(f"stage '{p.stage.name}' ({p.run_dir}) ended without writing {DONE_FILE}")
            log(f"[pipeline] {label}: done in {time.time() - t0:.0f} s")
    return plans
