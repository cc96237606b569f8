"""Values a config may hold, checked after types (:func:`hdc_lightning.config.load.validate`) and
before anything is built or a run folder exists, so a bad value is one line and the corrected
command then runs."""

from __future__ import annotations

import math
from typing import Any

from hdc_lightning.errors import ConfigError

ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")
PRECISIONS = ("32-true", "32", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "64-true", "64")
_SEED_MAX = 2**32 - 1  # numpy's seed range, which Lightning's seed_everything feeds


def _fail(key: str, value: Any, want: str) -> None:
    raise ConfigError(f"{key}={value!r}: {want}")


def _int_at_least(key: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        _fail(key, value, f"must be a whole number >= {low}")


def check_trainer(trainer: dict) -> None:
    if trainer["accelerator"] not in ACCELERATORS:
        _fail("trainer.accelerator", trainer["accelerator"], f"must be one of {', '.join(ACCELERATORS)}")
    if str(trainer["precision"]) not in PRECISIONS:
        _fail("trainer.precision", trainer["precision"], f"must be one of {', '.join(PRECISIONS)}")
    devices = trainer["devices"]
    if isinstance(devices, list):
        if not devices or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in devices):
            _fail("trainer.devices", devices, "a list must hold device indices >= 0")
    elif devices != "auto" and not (isinstance(devices, int) and not isinstance(devices, bool) and devices >= 1):
        _fail("trainer.devices", devices, "must be a count >= 1, 'auto' or a list of device indices")
    _int_at_least("trainer.num_nodes", trainer["num_nodes"], 1)
    for key in ("max_steps", "val_check_interval", "log_every_n_steps"):  # a run always ends
        _int_at_least(f"trainer.{key}", trainer[key], 1)
    _int_at_least("trainer.limit_val_batches", trainer["limit_val_batches"], 0)
    clip = trainer["gradient_clip_val"]
    if clip is not None and not (math.isfinite(clip) and clip > 0):
        _fail("trainer.gradient_clip_val", clip, "must be a positive finite number (or null: no clipping)")


def check_run(run: dict) -> None:
    seed = run["seed"]
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= _SEED_MAX:
        _fail("run.seed", seed, f"must be a whole number in [0, {_SEED_MAX}]")
    for key in ("ckpt_every_n_steps", "max_nonfinite_steps"):
        _int_at_least(f"run.{key}", run[key], 1)
    _int_at_least("run.min_free_mb", run["min_free_mb"], 0)


def check_phase(phase: dict) -> None:
    """Every number of a phase is finite; learning rates and λ are positive, weights not negative."""
    for key, value in phase.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        where = f"phase.{key}"
        if not math.isfinite(value):
            _fail(where, value, "must be a finite number")
        if (key == "lmbda" or key == "lr" or key.endswith("_lr")) and value <= 0:
            _fail(where, value, "must be > 0")
        if key.endswith("_weight") and value < 0:
            _fail(where, value, "must be >= 0")


def check_values(cfg: dict) -> None:
    """ConfigError (one line, naming the key) for the first value no run could use."""
    check_run(cfg["run"])
    check_trainer(cfg["trainer"])
    check_phase(cfg["phase"])
