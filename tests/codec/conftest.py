"""Fixtures for the codec tests: a tiny LIC model with seeded weights, as a checkpoint."""

from __future__ import annotations

import pytest

from tests.helpers.models import random_init_checkpoint


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory):
    return random_init_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny-seed0.ckpt", "lic", seed=0)


@pytest.fixture(scope="session")
def other_ckpt(tmp_path_factory):
    return random_init_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny-seed1.ckpt", "lic", seed=1)


@pytest.fixture(scope="session")
def tiny_codec(tiny_ckpt):
    from hdc_lightning.codec import load_codec

    return load_codec(str(tiny_ckpt))
