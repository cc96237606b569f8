"""Fixtures for the data tests (synthetic images and shards; no ../shared needed)."""

from __future__ import annotations

import pytest

from tests.helpers.images import save_image


@pytest.fixture(scope="session")
def tagged_shards(tmp_path_factory) -> str:
    """4 shards x 6 constant 32x32 PNGs whose red value is the sample id 0..23."""
    from hdc_lightning.data.shards import write_shards

    root = tmp_path_factory.mktemp("tagged")
    for i in range(24):
        save_image(root / "src" / f"s{i:02d}.png", 32, 32, value=(i, 100, 200))
    report = write_shards(root / "src", root / "shards", max_samples=6, progress=False)
    assert len(report.shards) == 4
    return str(root / "shards" / "train-{000000..000003}.tar")
