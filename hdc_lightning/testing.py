"""Small helpers for tests and benchmarks: synthetic images, hand-made shards, a tiny codec.

Nothing here is used by training or coding; it exists so test suites in different folders
(and benchmark scripts) build the same inputs the same way without sharing conftest files.
"""

from __future__ import annotations

import io
import math
import tarfile
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

TINY_LIC_SPEC = {"name": "lic", "preset": "tiny", "args": {}}


def synthetic_image(h: int, w: int, seed: int = 0) -> torch.Tensor:
    """A deterministic float Tensor[3,h,w] in [0,1]: smooth waves, edges and a little noise."""
    g = torch.Generator().manual_seed(seed)
    yy = torch.linspace(0, 1, h)[:, None]
    xx = torch.linspace(0, 1, w)[None, :]
    phase = float(torch.rand(1, generator=g)) * math.pi
    r = 0.5 + 0.4 * torch.sin(6 * math.pi * xx * yy + phase)
    gch = ((xx + yy) / 2).expand(h, w)
    b = ((xx * 8).floor() + (yy * 6).floor()) % 2 * 0.6 + 0.2
    noise = 0.05 * torch.rand(3, h, w, generator=g)
    return (torch.stack([r, gch, b]) + noise).clamp(0, 1)


def encode_png(array: np.ndarray) -> bytes:
    """PNG bytes of a uint8 HxWx3 array."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def image_png(h: int, w: int, seed: int = 0) -> bytes:
    """PNG bytes of :func:`synthetic_image`."""
    x = synthetic_image(h, w, seed).mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return encode_png(np.ascontiguousarray(x))


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


def write_image_shards(out_dir: str | Path, shards: int = 2, per_shard: int = 6, size: int = 72,
                       seed: int = 0, prefix: str = "train") -> str:
    """Write ``shards`` tar shards of ``per_shard`` PNGs each; returns the brace pattern."""
    out_dir = Path(out_dir)
    for s in range(shards):
        members = [(f"s{s:02d}i{i:03d}.png", image_png(size, size, seed * 1000 + s * 100 + i))
                   for i in range(per_shard)]
        write_tar(out_dir / f"{prefix}-{s:06d}.tar", members)
    return str(out_dir / f"{prefix}-{{{0:06d}..{shards - 1:06d}}}.tar")


def random_init_checkpoint(path: str | Path, spec: dict | None = None, seed: int = 0) -> Path:
    """A weights-only checkpoint of a randomly initialised model (``spec``: ``{name, preset,
    args}``, default the tiny LIC) in the format ``load_codec`` reads."""
    from hdc_lightning.codec import export_checkpoint
    from hdc_lightning.registry import build_spec

    spec = dict(spec or TINY_LIC_SPEC)
    torch.manual_seed(seed)
    model = build_spec("model", spec).eval()
    export_checkpoint(model, spec, str(path))
    return Path(path)


def tiny_lic_checkpoint(path: str | Path, seed: int = 0) -> Path:
    """A randomly initialised tiny LIC checkpoint that ``load_codec`` reads."""
    return random_init_checkpoint(path, TINY_LIC_SPEC, seed)


def photo_like(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Smooth colour fields plus a few edges (uint8 ``[H,W,3]``): compressible like a photo, not like noise."""
    low = rng.random((3, h // 16 + 2, w // 16 + 2))
    img = np.stack([np.kron(c, np.ones((16, 16)))[:h, :w] for c in low], axis=-1)
    yy, xx = np.mgrid[0:h, 0:w]
    img += 0.2 * np.sin(xx / rng.uniform(3, 9))[..., None] * (yy > h // 2)[..., None]
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def write_tiny_dataset(root: str | Path, seed: int = 0) -> dict:
    """8 photo-like 96² training images in 2 shards and 2 validation images of odd sizes.

    Returns ``{"shards": brace pattern, "val": folder}`` for ``data.train.shards``/``data.val.folder``.
    """
    from PIL import Image

    from hdc_lightning.data import write_shards

    root = Path(root)
    rng = np.random.default_rng(seed)
    (root / "src").mkdir(parents=True)
    (root / "val").mkdir()
    for i in range(8):
        Image.fromarray(photo_like(rng, 96, 96)).save(root / "src" / f"im{i}.png")
    for i, (h, w) in enumerate([(70, 100), (64, 90)]):
        Image.fromarray(photo_like(rng, h, w)).save(root / "val" / f"v{i}.png")
    report = write_shards(root / "src", root / "shards", max_samples=4, progress=False)
    return {"shards": str(report.pattern), "val": str(root / "val")}

