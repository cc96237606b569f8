"""Fixtures of the pipeline tests; the subprocess helpers are the reliability suite's own."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.append(str(Path(__file__).resolve().parents[1] / "reliability"))

from hdc_lightning.testing import write_image_shards  # noqa: E402


@pytest.fixture(scope="session")
def tiny_shards(tmp_path_factory) -> str:
    """Two shards of six 72x72 PNGs: the training data of every short stage here."""
    return write_image_shards(tmp_path_factory.mktemp("shards"), shards=2, per_shard=6, size=72)
