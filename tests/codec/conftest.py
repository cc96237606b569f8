"""Fixtures for the codec tests: a tiny LIC model with seeded weights, as a checkpoint."""

from __future__ import annotations

import pytest
from codec_fixtures import TINY_SPEC, seeded_tiny

from hdc_lightning.codec import export_checkpoint


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "tiny-seed0.ckpt"
    export_checkpoint(seeded_tiny(0), TINY_SPEC, str(path))
    return path


@pytest.fixture(scope="session")
def other_ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "tiny-seed1.ckpt"
    export_checkpoint(seeded_tiny(1), TINY_SPEC, str(path))
    return path


@pytest.fixture(scope="session")
def tiny_codec(tiny_ckpt):
    from hdc_lightning.codec import load_codec

    return load_codec(str(tiny_ckpt))


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: these models are small, and on a shared CPU more threads only spin."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
