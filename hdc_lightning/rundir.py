"""The run directory ``<run.root>/<run.name>/``: decided once, checked before training.

Layout::

    runs/<name>/config.yaml       resolved config
    runs/<name>/git.txt           revision and status (+ git.diff when dirty)
    runs/<name>/pip-freeze.txt    installed packages
    runs/<name>/checkpoints/last.ckpt
    runs/<name>/tb/               TensorBoard events
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from hdc_lightning.errors import CheckpointError, ConfigError, RunDirError
from hdc_lightning.fileio import TEMP_GLOB, check_component, is_temp, write_text

_RANK_VARS = ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK")


def is_launcher_rank_zero() -> bool:
    """True in the process that must create the run directory.

    Lightning's DDP launcher, torchrun and SLURM start the other ranks with one of these
    variables set to a non-zero value; they must not re-check or re-create the directory.
    """
    ranks = [os.environ.get(v) for v in _RANK_VARS]
    if int(os.environ.get("SLURM_NTASKS", "1") or 1) > 1:
        ranks.append(os.environ.get("SLURM_PROCID"))
    return all(r in (None, "", "0") for r in ranks)


# What write_metadata, the trainer and its callbacks put in a run directory (rdp.json: the
# RD/RP figure callback); anything else makes an overwrite move the directory aside.
_RUN_ENTRIES = frozenset(
    {"config.yaml", "git.txt", "git.diff", "pip-freeze.txt", "checkpoints", "tb", "done.json", "rdp.json"}
)


def check_run_name(name: object) -> str:
    """``run.name`` must be one or more plain path components: it may not leave ``run.root``."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"run.name must be a non-empty string, got {name!r}")
    parts = name.split("/")
    if name.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\0" in name:
        raise ConfigError(
            f"run.name={name!r}: must be plain folder names under run.root (e.g. 'lic-tiny' or 'ladder/q1'); "
            "no absolute path, no '.' or '..' and no empty component"
        )
    for part in parts:
        check_component(part, "run.name component")
    return name


def run_dir_of(cfg: dict) -> Path:
    return Path(cfg["run"]["root"]) / check_run_name(cfg["run"]["name"])


CKPT_DIR, LAST_CKPT = "checkpoints", "last.ckpt"  # <run_dir>/checkpoints/last.ckpt


def last_ckpt_of(run_dir: Path) -> Path:
    return Path(run_dir) / CKPT_DIR / LAST_CKPT


def run_name_of(ckpt: str | Path) -> str | None:
    """``<root>/NAME/checkpoints/<file>`` → NAME; None for a checkpoint outside a run folder."""
    p = Path(ckpt)
    return p.parent.parent.name if p.parent.name == CKPT_DIR and p.parent.parent.name else None


def resolve_checkpoints(paths: Sequence[str | Path]) -> list[Path]:
    """Checkpoint files; a run directory stands for its last.ckpt, a ladder folder for each run's."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_file():
            out.append(p)
        elif last_ckpt_of(p).is_file():
            out.append(last_ckpt_of(p))
        elif (p / LAST_CKPT).is_file():
            out.append(p / LAST_CKPT)
        elif p.is_dir() and (runs := sorted(p.glob(f"*/{CKPT_DIR}/{LAST_CKPT}"))):
            out += runs
        else:
            raise CheckpointError(
                f"{p}: no checkpoint there (expected a .ckpt file, a run directory or a ladder folder)"
            )
    return out


def _has_run_content(run_dir: Path) -> bool:
    return run_dir.is_dir() and any(p.name in ("checkpoints", "tb", "config.yaml") for p in run_dir.iterdir())


def check_writable(run_dir: Path, min_free_mb: int) -> None:
    """Fail now, not hours later, if the run directory cannot take checkpoints."""
    try:
        (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        probe = run_dir / f".write-probe-{os.getpid()}"
        probe.write_bytes(b"\0" * 4096)
        probe.unlink()
    except OSError as e:
        raise RunDirError(f"{run_dir}: run directory is not writable ({e.strerror or e})") from None
    free_mb = shutil.disk_usage(run_dir).free // 2**20
    if free_mb < min_free_mb:
        raise RunDirError(
            f"{run_dir}: only {free_mb} MiB free on its disk, less than run.min_free_mb={min_free_mb}; "
            "free space or point run.root elsewhere"
        )


def prepare(cfg: dict) -> tuple[Path, Path | None]:
    """Apply the resume/overwrite rules; returns (run_dir, checkpoint to resume or None)."""
    run = cfg["run"]
    if run["resume"] and run["overwrite"]:
        raise ConfigError("run.resume and run.overwrite cannot both be true")
    run_dir = run_dir_of(cfg)
    last = last_ckpt_of(run_dir)
    rank0 = is_launcher_rank_zero()
    if run["resume"]:
        if rank0:
            check_writable(run_dir, run["min_free_mb"])
            (run_dir / "done.json").unlink(missing_ok=True)  # training continues: not finished any more
            for stale in (run_dir / "checkpoints").glob(TEMP_GLOB):  # a process killed mid-save left it
                stale.unlink(missing_ok=True)
        return run_dir, (last if last.is_file() else None)
    if rank0:
        if _has_run_content(run_dir) or (run_dir / "done.json").exists():
            if not run["overwrite"]:
                raise RunDirError(
                    f"{run_dir}: run directory already exists; pass run.resume=true to continue it "
                    "or run.overwrite=true to start afresh"
                )
            clear_run_dir(run_dir, Path(run["root"]))
        check_writable(run_dir, run["min_free_mb"])
    return run_dir, None


def _is_our_run(run_dir: Path, root: Path) -> bool:
    """A real directory inside ``root`` that holds our config and nothing but run files."""
    try:
        inside = run_dir.resolve().is_relative_to(root.resolve()) and run_dir.resolve() != root.resolve()
        names = {p.name for p in run_dir.iterdir()}
    except OSError:
        return False
    stray = {
        n for n in names - _RUN_ENTRIES if not (is_temp(n) or n.startswith(".") and (".tmp" in n or "write-probe" in n))
    }
    return inside and not run_dir.is_symlink() and "config.yaml" in names and not stray


def clear_run_dir(run_dir: Path, root: Path) -> Path | None:
    """``run.overwrite``: delete a run of ours; anything else is moved aside, never deleted.

    Returns where it was moved (``<name>.old-<time>``), or None when it was deleted.
    """
    if _is_our_run(run_dir, root):
        shutil.rmtree(run_dir)
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside, n = run_dir.with_name(f"{run_dir.name}.old-{stamp}"), 1
    while aside.exists() or aside.is_symlink():
        aside, n = run_dir.with_name(f"{run_dir.name}.old-{stamp}-{n}"), n + 1
    try:
        os.replace(run_dir, aside)
    except OSError as e:
        raise RunDirError(f"{run_dir}: cannot move it aside to start afresh ({e.strerror or e})") from None
    print(f"note: {run_dir} holds files that are not a run of ours; moved it to {aside}", file=sys.stderr)
    return aside


def mark_done(run_dir: Path, global_step: int, metrics: dict[str, float]) -> None:
    """``done.json``: the stage finished; a staged pipeline skips it when rerun."""
    write_text(run_dir / "done.json", json.dumps({"global_step": global_step, "metrics": metrics}, indent=1), False)


def _capture(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        return out.stdout if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def write_metadata(run_dir: Path, config_yaml: str) -> None:
    """Resolved config, git revision (+ diff) and ``pip freeze`` for reproducibility."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(config_yaml)
    rev = _capture(["git", "rev-parse", "HEAD"]).strip()
    status = _capture(["git", "status", "--porcelain"])
    diff = _capture(["git", "diff", "HEAD"])
    (run_dir / "git.txt").write_text(
        f"revision: {rev or 'unknown (not a git checkout)'}\ndirty: {bool(status.strip())}\n{status}"
    )
    if diff:
        (run_dir / "git.diff").write_text(diff)
    (run_dir / "pip-freeze.txt").write_text(_capture([sys.executable, "-m", "pip", "freeze"]))
