"""Fixtures for the LIC tests: tiny shards + a validation folder in a temp dir."""

from __future__ import annotations

import pytest

from hdc_lightning.testing import write_tiny_dataset


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> dict:
    """8 training images in 2 shards and 2 validation images of odd sizes."""
    return write_tiny_dataset(tmp_path_factory.mktemp("licdata"))


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: these models are small, and on a shared CPU more threads only spin."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
