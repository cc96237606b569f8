"""Helpers of the LIC tests: fast fit configs."""

from __future__ import annotations

from pathlib import Path

from hdc_lightning.config import load_config

REPO = Path(__file__).resolve().parents[2]
TINY_YAML = REPO / "experiments" / "lic" / "tiny.yaml"


def fit_overrides(data: dict, run_root: Path, **extra) -> list[str]:
    """Overrides that make experiments/lic/tiny.yaml run in seconds on the temp data."""
    values = {
        "run.root": str(run_root),
        "run.name": "t",
        "run.min_free_mb": 1,
        "data.train.shards": data["shards"],
        "data.train.crop": 64,
        "data.train.batch_size": 2,
        "data.train.num_workers": 0,
        "data.train.shuffle_buffer": 4,
        "data.val.folder": data["val"],
        "data.val.max_images": 2,
        "trainer.limit_val_batches": 2,
        "trainer.log_every_n_steps": 1,
        "trainer.enable_progress_bar": False,
        "trainer.accelerator": "cpu",
    }
    values.update(extra)
    return [f"{k}={v}" for k, v in values.items()]


def tiny_cfg(data: dict, run_root: Path, **extra) -> dict:
    return load_config(TINY_YAML, fit_overrides(data, run_root, **extra))
