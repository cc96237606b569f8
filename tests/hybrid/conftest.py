"""Fixtures for the hybrid tests: tiny shards + val images, fit configs, a tiny hdc checkpoint."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hdc_lightning.codec import export_checkpoint
from hdc_lightning.config import load_config
from hdc_lightning.registry import build_spec

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
TINY_SPEC = {"name": "hdc", "preset": "tiny", "args": {}}


def photo_like(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Smooth colour fields plus a few edges: compressible like a photo, not like noise."""
    low = rng.random((3, h // 16 + 2, w // 16 + 2))
    img = np.stack([np.kron(c, np.ones((16, 16)))[:h, :w] for c in low], axis=-1)
    yy, xx = np.mgrid[0:h, 0:w]
    img += 0.2 * np.sin(xx / rng.uniform(3, 9))[..., None] * (yy > h // 2)[..., None]
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> dict:
    """8 training images in 2 shards and 2 validation images of odd sizes."""
    from hdc_lightning.data import write_shards

    root = tmp_path_factory.mktemp("hybriddata")
    rng = np.random.default_rng(0)
    (root / "src").mkdir()
    (root / "val").mkdir()
    for i in range(8):
        Image.fromarray(photo_like(rng, 96, 96)).save(root / "src" / f"im{i}.png")
    for i, (h, w) in enumerate([(70, 100), (64, 90)]):
        Image.fromarray(photo_like(rng, h, w)).save(root / "val" / f"v{i}.png")
    report = write_shards(root / "src", root / "shards", max_samples=4, progress=False)
    return {"shards": str(report.pattern), "val": str(root / "val")}


def fit_overrides(data: dict, run_root: Path, **extra) -> list[str]:
    values = {
        "run.root": str(run_root), "run.name": "t", "run.min_free_mb": 1,
        "data.train.shards": data["shards"], "data.train.crop": 64, "data.train.batch_size": 2,
        "data.train.num_workers": 0, "data.train.shuffle_buffer": 4,
        "data.val.folder": data["val"], "data.val.max_images": 2,
        "trainer.limit_val_batches": 2, "trainer.log_every_n_steps": 1,
        "trainer.enable_progress_bar": False, "trainer.accelerator": "cpu",
        "phase.image_every": 1,
    }
    values.update(extra)
    return [f"{k}={v}" for k, v in values.items()]


def hybrid_cfg(phase: str, data: dict, run_root: Path, **extra) -> dict:
    extra.setdefault("phase.allow_random_init", True)
    return load_config(REPO / "experiments" / phase / "tiny.yaml", fit_overrides(data, run_root, **extra))


def tiny_hdc(seed: int = 0, **args):
    torch.manual_seed(seed)
    spec = {**TINY_SPEC, "args": dict(args)}
    return build_spec("model", spec).eval(), spec


@pytest.fixture(scope="session")
def hdc_ckpt(tmp_path_factory) -> Path:
    model, spec = tiny_hdc(0)
    path = tmp_path_factory.mktemp("hdcckpt") / "hdc-tiny-seed0.ckpt"
    export_checkpoint(model, spec, str(path))
    return path


@pytest.fixture(scope="session")
def hdc_codec(hdc_ckpt):
    from hdc_lightning.codec import load_codec

    return load_codec(str(hdc_ckpt))
