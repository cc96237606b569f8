"""Running a plan: one ``hdc fit`` process per stage, under a lock, linked into the recipe's folders."""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

from hdc_lightning.checkpoints import safe_load
from hdc_lightning.config.load import load_config
from hdc_lightning.errors import HDCError, first_line
from hdc_lightning.pipeline.identity import stage_identity
from hdc_lightning.pipeline.plan import StagePlan, plan
from hdc_lightning.pipeline.spec import DONE_FILE, SHARED, PipelineSpec
from hdc_lightning.rundir import is_launcher_rank_zero, last_ckpt_of


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


def _next_step(p: StagePlan) -> str:
    """What to do after a failed stage: resume it, unless its checkpoint is what is broken."""
    last = last_ckpt_of(p.run_dir)
    if last.exists():
        try:
            safe_load(last)
        except HDCError as e:
            why = first_line(e).removeprefix(f"{last}: ")
            return (
                f"its {last.relative_to(p.run_dir)} is unreadable ({why}); delete it to restart the stage, then rerun"
            )
    return "rerun the same command to resume it"


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
                raise HDCError(f"stage '{p.stage.name}' ({p.run_dir}) failed with exit status {code}; {_next_step(p)}")
            if p.done() is None:
                raise HDCError(f"stage '{p.stage.name}' ({p.run_dir}) ended without writing {DONE_FILE}")
            log(f"[pipeline] {label}: done in {time.time() - t0:.0f} s")
    return plans
