"""Shared fixtures. Tests never depend on ../shared silently: they skip with a reason.

Helpers (functions, no fixtures) live in ``tests/helpers/``: ``from tests.helpers.images import ...``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from hdc_lightning.fileio import STATE_ENV
from tests.helpers.datasets import write_image_shards, write_tiny_dataset

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

# Two cores on CI shared with loader workers and DDP peers: one intra-op thread each is fastest.
torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def _state_dir(tmp_path_factory):
    """hdc's ledger of written outputs goes to a scratch folder, never the user's home (commands
    run as subprocesses inherit it)."""
    old = os.environ.get(STATE_ENV)
    os.environ[STATE_ENV] = str(tmp_path_factory.mktemp("hdc-state"))
    yield
    if old is None:
        os.environ.pop(STATE_ENV, None)
    else:
        os.environ[STATE_ENV] = old


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def kodak_dir() -> Path:
    path = SHARED_DATA / "kodak"
    if not path.is_dir():
        pytest.skip(f"Kodak images not found at {path} (../shared/data is absent)")
    return path


@pytest.fixture(scope="session")
def photos_dir() -> Path:
    path = SHARED_DATA / "photos"
    if not path.is_dir():
        pytest.skip(f"training photos not found at {path} (../shared/data is absent)")
    return path


@pytest.fixture(scope="session")
def tiny_shards(tmp_path_factory) -> str:
    """Two shards of six 72x72 PNGs: the training data of the short runs without validation."""
    return write_image_shards(tmp_path_factory.mktemp("shards"), shards=2, per_shard=6, size=72)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> dict:
    """8 training images in 2 shards and 2 validation images of odd sizes:
    ``{"shards", "val"}``, keyword arguments of ``tests.helpers.configs.fit_overrides``."""
    return write_tiny_dataset(tmp_path_factory.mktemp("tinydata"))


@pytest.fixture()
def in_tmp(tmp_path, monkeypatch) -> Path:
    """Run the test with the working directory in a fresh temporary folder."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
