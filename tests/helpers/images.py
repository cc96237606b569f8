"""The one synthetic-image generator of the tests, and writers of image files and PNG bytes.

Every test image comes from :func:`synthetic_image`; its ``style`` picks the kind of picture.
The styles keep the exact pixels of the generators they replaced, because tests pin numbers
computed from them (md5s of coded files, metric values).
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

Seed = int | None | torch.Generator | np.random.Generator

STYLES = ("waves", "fields", "photo", "blocks", "noise")


def synthetic_image(h: int, w: int, seed: Seed = 0, *, style: str = "waves", n: int | None = None) -> torch.Tensor:
    """A deterministic float ``Tensor[3,h,w]`` in [0,1] (``Tensor[n,3,h,w]`` when ``n`` is given).

    Styles:

    - ``"waves"`` (default): a sine wave, a diagonal ramp and a checkerboard of edges, with a
      random phase and a little noise. ``seed=None`` draws nothing: phase 0, no noise (the
      image the codec's golden md5 is pinned on).
    - ``"fields"``: smooth colour fields, bilinear upsampling of noise on a 16-pixel grid.
    - ``"photo"``: smooth colour regions plus finer texture, so codecs and metrics behave
      as on photos.
    - ``"blocks"``: 16-pixel colour blocks with a sine edge in the lower half; values on the
      uint8 grid (``k/255``).
    - ``"noise"``: uniform noise on the uint8 grid.

    ``seed`` is an int, or a generator to draw several images from one stream: a
    ``torch.Generator`` (waves, fields, photo) or a ``numpy.random.Generator`` (blocks,
    noise). With ``n``, the images are drawn one after the other from the same stream.
    """
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; known: {', '.join(STYLES)}")
    if seed is None and style != "waves":
        raise ValueError(f"style {style!r} needs a seed")
    if style in ("blocks", "noise"):
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        draw = lambda: _from_uint8(_blocks(rng, h, w) if style == "blocks" else _noise(rng, h, w))
    else:
        g = seed if isinstance(seed, torch.Generator) or seed is None else torch.Generator().manual_seed(seed)
        draw = {"waves": lambda: _waves(h, w, g), "fields": lambda: _fields(h, w, g), "photo": lambda: _photo(h, w, g)}[
            style
        ]
    return draw() if n is None else torch.stack([draw() for _ in range(n)])


def _waves(h: int, w: int, g: torch.Generator | None) -> torch.Tensor:
    yy = torch.linspace(0, 1, h)[:, None]
    xx = torch.linspace(0, 1, w)[None, :]
    arg = 6 * math.pi * xx * yy
    if g is not None:
        arg = arg + float(torch.rand(1, generator=g)) * math.pi
    r = 0.5 + 0.4 * torch.sin(arg)
    gch = ((xx + yy) / 2).expand(h, w)
    b = ((xx * 8).floor() + (yy * 6).floor()) % 2 * 0.6 + 0.2
    img = torch.stack([r, gch, b])
    if g is not None:
        img = img + 0.05 * torch.rand(3, h, w, generator=g)
    return img.clamp(0, 1)


def _fields(h: int, w: int, g: torch.Generator) -> torch.Tensor:
    low = torch.rand(1, 3, max(1, h // 16), max(1, w // 16), generator=g)
    return F.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)[0]


def _photo(h: int, w: int, g: torch.Generator) -> torch.Tensor:
    coarse = F.interpolate(torch.rand(1, 3, 6, 8, generator=g), size=(h, w), mode="bicubic", align_corners=False)
    mid = F.interpolate(
        torch.rand(1, 3, h // 8 + 1, w // 8 + 1, generator=g), size=(h, w), mode="bilinear", align_corners=False
    )
    fine = torch.rand(1, 1, h, w, generator=g)
    return (0.6 * coarse + 0.3 * mid + 0.1 * fine)[0].clamp(0, 1)


def _blocks(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    low = rng.random((3, h // 16 + 2, w // 16 + 2))
    img = np.stack([np.kron(c, np.ones((16, 16)))[:h, :w] for c in low], axis=-1)
    yy, xx = np.mgrid[0:h, 0:w]
    img += 0.2 * np.sin(xx / rng.uniform(3, 9))[..., None] * (yy > h // 2)[..., None]
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def _noise(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _from_uint8(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).float().div(255)


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """A ``[3,H,W]`` float image in [0,1] as a contiguous uint8 ``[H,W,3]`` array (rounded)."""
    return np.ascontiguousarray(image.mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy())


def encode_png(array: np.ndarray) -> bytes:
    """PNG bytes of a uint8 ``[H,W,3]`` array."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def image_png(h: int, w: int, seed: Seed = 0, *, style: str = "waves") -> bytes:
    """PNG bytes of :func:`synthetic_image`."""
    return encode_png(to_uint8(synthetic_image(h, w, seed, style=style)))


def solid_png(value: int, size: int = 32) -> bytes:
    """PNG bytes of a ``size``² image whose every channel of every pixel is ``value``."""
    return encode_png(np.full((size, size, 3), value, np.uint8))


def save_image(
    path: Path,
    height: int,
    width: int,
    value: tuple[int, int, int] | None = None,
    fmt: str | None = None,
    seed: Seed = 0,
    style: str = "noise",
) -> Path:
    """Write an RGB image file (format from the suffix unless ``fmt``): the constant colour
    ``value`` if given, else :func:`synthetic_image` of ``style`` (uniform noise by default)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    if value is not None:
        arr = np.empty((height, width, 3), np.uint8)
        arr[:] = value
    else:
        arr = to_uint8(synthetic_image(height, width, seed, style=style))
    Image.fromarray(arr).save(path, format=fmt)
    return path
