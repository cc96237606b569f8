"""The one tiny-config builder of the fit, pipeline and reliability tests, and repository paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def tiny_yaml(phase: str = "lic") -> Path:
    """``experiments/<phase>/tiny.yaml``."""
    return REPO / "experiments" / phase / "tiny.yaml"


TINY_LIC = tiny_yaml("lic")


def fit_overrides(
    run_root: str | Path,
    shards: str | None = None,
    *,
    val: str | None = None,
    name: str = "t",
    max_steps: int | None = None,
    every: int | None = None,
    crop: int = 64,
    **extra: Any,
) -> list[str]:
    """CLI overrides that make a ``tiny.yaml`` run take seconds on the CPU.

    The run ``run_root/name`` trains on ``crop``² crops of ``shards`` in batches of 2, loads
    without worker processes, logs every step and checkpoints every ``every`` steps (else
    the config's interval). With ``val`` (a folder) it validates on 2 of its images,
    without it not at all; ``shards=None`` leaves the data settings alone (data supplied
    otherwise). ``extra``: further ``{"dotted.key": value}`` overrides, applied last.
    """
    values: dict[str, Any] = {
        "run.root": run_root,
        "run.name": name,
        "run.min_free_mb": 1,
        "trainer.accelerator": "cpu",
        "trainer.log_every_n_steps": 1,
        "trainer.enable_progress_bar": "false",
    }
    if every is not None:
        values["run.ckpt_every_n_steps"] = every
    if max_steps is not None:
        values["trainer.max_steps"] = max_steps
    if shards is not None:
        values.update(
            {
                "data.train.shards": shards,
                "data.train.crop": crop,
                "data.train.batch_size": 2,
                "data.train.num_workers": 0,
                "data.train.shuffle_buffer": 4,
            }
        )
        if val is None:
            values["data.val.folder"] = "null"
        else:
            values.update({"data.val.folder": val, "data.val.max_images": 2, "trainer.limit_val_batches": 2})
    values.update(extra)
    return [f"{k}={v}" for k, v in values.items()]


def tiny_config(phase: str, run_root: str | Path, shards: str | None = None, *overrides: str, **kw: Any) -> dict:
    """The config of ``experiments/<phase>/tiny.yaml`` with :func:`fit_overrides` (``kw``),
    then ``overrides`` (``key=value`` strings), applied."""
    from hdc_lightning.config import load_config

    return load_config(tiny_yaml(phase), fit_overrides(run_root, shards, **kw) + list(overrides))


def fit_ddp(config: str, args: list[str], timeout: float = 600):
    """``hdc fit`` of ``experiments/<config>`` with ``args`` in a subprocess (one thread a rank):
    the 2-process CPU DDP runs of the phase tests. Asserts it exited 0 with both members."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, "-m", "hdc_lightning", "fit", str(REPO / "experiments" / config), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "MEMBER: 2/2" in proc.stdout + proc.stderr  # the second rank really joined
    return proc
