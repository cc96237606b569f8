"""Fixtures for the LIC tests: tiny shards + a validation folder in a temp dir."""

from __future__ import annotations

import numpy as np
import pytest
from lic_fixtures import photo_like
from PIL import Image


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> dict:
    """8 training images in 2 shards and 2 validation images of odd sizes."""
    from hdc_lightning.data import write_shards

    root = tmp_path_factory.mktemp("licdata")
    rng = np.random.default_rng(0)
    (root / "src").mkdir()
    (root / "val").mkdir()
    for i in range(8):
        Image.fromarray(photo_like(rng, 96, 96)).save(root / "src" / f"im{i}.png")
    for i, (h, w) in enumerate([(70, 100), (64, 90)]):
        Image.fromarray(photo_like(rng, h, w)).save(root / "val" / f"v{i}.png")
    report = write_shards(root / "src", root / "shards", max_samples=4, progress=False)
    return {"shards": str(report.pattern), "val": str(root / "val")}


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: these models are small, and on a shared CPU more threads only spin."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
