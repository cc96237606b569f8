"""Fixtures for the hybrid tests: a tiny hdc checkpoint and its codec (data: tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.models import random_init_checkpoint


@pytest.fixture(scope="session")
def hdc_ckpt(tmp_path_factory) -> Path:
    return random_init_checkpoint(tmp_path_factory.mktemp("hdcckpt") / "hdc-tiny-seed0.ckpt", "hdc", seed=0)


@pytest.fixture(scope="session")
def hdc_codec(hdc_ckpt):
    from hdc_lightning.codec import load_codec

    return load_codec(str(hdc_ckpt))
