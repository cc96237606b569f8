"""Hand-made data for the tests: tar files, shards of synthetic PNGs, the tiny fit dataset."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tests.helpers.images import image_png, save_image


def write_tar(path: str | Path, members: Sequence[tuple[str, bytes]]) -> Path:
    """A tar file holding exactly these ``(name, payload)`` members, in order."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def write_image_shards(
    out_dir: str | Path, shards: int = 2, per_shard: int = 6, size: int = 72, seed: int = 0, prefix: str = "train"
) -> str:
    """Write ``shards`` tar shards of ``per_shard`` PNGs each; returns the brace pattern."""
    out_dir = Path(out_dir)
    for s in range(shards):
        members = [
            (f"s{s:02d}i{i:03d}.png", image_png(size, size, seed * 1000 + s * 100 + i)) for i in range(per_shard)
        ]
        write_tar(out_dir / f"{prefix}-{s:06d}.tar", members)
    return str(out_dir / f"{prefix}-{{{0:06d}..{shards - 1:06d}}}.tar")


def write_tiny_dataset(root: str | Path, seed: int = 0) -> dict:
    """8 photo-like 96² training images in 2 shards and 2 validation images of odd sizes.

    Returns ``{"shards": brace pattern, "val": folder}``, the keyword arguments
    ``shards``/``val`` of :func:`tests.helpers.configs.fit_overrides`.
    """
    from hdc_lightning.data import write_shards

    root = Path(root)
    rng = np.random.default_rng(seed)
    (root / "src").mkdir(parents=True)
    (root / "val").mkdir()
    for i in range(8):
        save_image(root / "src" / f"im{i}.png", 96, 96, seed=rng, style="blocks")
    for i, (h, w) in enumerate([(70, 100), (64, 90)]):
        save_image(root / "val" / f"v{i}.png", h, w, seed=rng, style="blocks")
    report = write_shards(root / "src", root / "shards", max_samples=4, progress=False)
    return {"shards": str(report.pattern), "val": str(root / "val")}


def sample_id(image) -> int:
    """Tagged images are constant: their red value (0..255) is the sample id."""
    return int(round(float(image[0, 0, 0]) * 255))
