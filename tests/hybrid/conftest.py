"""Fixtures for the hybrid tests: tiny shards + val images, fit configs, a tiny hdc checkpoint."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from hdc_lightning.codec import export_checkpoint
from hdc_lightning.config import load_config
from hdc_lightning.registry import build_spec
from hdc_lightning.testing import write_tiny_dataset

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
TINY_SPEC = {"name": "hdc", "preset": "tiny", "args": {}}


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> dict:
    """8 training images in 2 shards and 2 validation images of odd sizes."""
    return write_tiny_dataset(tmp_path_factory.mktemp("hybriddata"))


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
