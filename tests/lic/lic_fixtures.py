"""Helpers of the LIC tests: synthetic photo-like images and fast fit configs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hdc_lightning.config import load_config


REPO = Path(__file__).resolve().parents[2]
TINY_YAML = REPO / "experiments" / "lic" / "tiny.yaml"


def photo_like(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Smooth colour fields plus a few edges: compressible like a photo, not like noise."""
    low = rng.random((3, h // 16 + 2, w // 16 + 2))
    img = np.stack([np.kron(c, np.ones((16, 16)))[:h, :w] for c in low], axis=-1)
    yy, xx = np.mgrid[0:h, 0:w]
    img += 0.2 * np.sin(xx / rng.uniform(3, 9))[..., None] * (yy > h // 2)[..., None]
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


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
