"""Shared fixtures. Tests never depend on ../shared silently: they skip with a reason."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

# Two cores on CI shared with loader workers and DDP peers: one intra-op thread each is fastest.
torch.set_num_threads(1)


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


@pytest.fixture()
def in_tmp(tmp_path, monkeypatch) -> Path:
    """Run the test with the working directory in a fresh temporary folder."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
