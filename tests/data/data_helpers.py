"""Helpers for the data tests: synthetic images and hand-made tar shards."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from hdc_lightning.testing import write_tar


def save_image(path: Path, height: int, width: int, value: tuple[int, int, int] | None = None,
               fmt: str | None = None, seed: int = 0) -> Path:
    """Write an RGB image: constant ``value`` if given, else seeded noise."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if value is not None:
        arr = np.empty((height, width, 3), np.uint8)
        arr[:] = value
    else:
        arr = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path, format=fmt)
    return path


def tar_members(path: Path, members: list[tuple[str, bytes]]) -> Path:
    """Write a tar with exactly these (name, payload) members."""
    return write_tar(path, members)


def png_bytes(value: int, size: int = 32) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((size, size, 3), value, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def sample_id(image) -> int:
    """Tagged images are constant: their red value (0..255) is the sample id."""
    return int(round(float(image[0, 0, 0]) * 255))
