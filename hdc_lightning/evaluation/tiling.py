"""Code large images in tiles so that memory stays bounded (CLIC, Tecnick and larger).

Each tile is compressed into its own file by the codec and decoded on its own; the
rate counts the bytes of every tile's file, so a tiled bpp is an honest (slightly
pessimistic: one header per tile) file-size rate. Tiles are split evenly across the
image (no sliver at the border).
"""

from __future__ import annotations

import math
import time
from typing import NamedTuple, Protocol

import torch

DEFAULT_MAX_PIXELS = 4 * 1024 * 1024  # whole-image coding up to 4 MPix (a 2048² image)...
DEFAULT_TILE = 1024  # ...and tiles of about 1024² beyond
MIN_TILE = 64  # smaller tiles would be mostly padding (the codecs pad to multiples of 64) and countless


class Codec(Protocol):
    """What evaluation needs of a codec (see hdc_lightning.codec.api.load_codec)."""

    def encode(self, image: torch.Tensor) -> bytes: ...

    def decode(self, data: bytes): ...  # -> object with .image [3,H,W]


class Coded(NamedTuple):
    nbytes: int
    image: torch.Tensor  # [3,H,W] float in [0,1]
    tiles: int
    encoding_time: float
    decoding_time: float


def _splits(length: int, tile: int) -> list[tuple[int, int]]:
    n = max(1, math.ceil(length / tile))
    edges = [round(i * length / n) for i in range(n + 1)]
    return [(edges[i], edges[i + 1] - edges[i]) for i in range(n)]


def tile_boxes(height: int, width: int, tile: int) -> list[tuple[int, int, int, int]]:
    """(top, left, h, w) boxes of at most ``tile``×``tile`` covering the image."""
    if tile < 1:
        raise ValueError(f"tile size must be positive, got {tile}")
    return [(top, left, h, w) for top, h in _splits(height, tile) for left, w in _splits(width, tile)]


def choose_tile(height: int, width: int, tile: int | None, max_pixels: int = DEFAULT_MAX_PIXELS) -> int | None:
    """The tile size to use: ``tile`` if given (0 = never tile), else whole up to ``max_pixels``."""
    if tile is not None:
        return tile if tile > 0 and (height > tile or width > tile) else None
    return DEFAULT_TILE if height * width > max_pixels else None


def _decoded_image(decoded, h: int, w: int) -> torch.Tensor:
    img = getattr(decoded, "image", decoded)
    if img.dim() == 4:
        img = img[0]
    if tuple(img.shape) != (3, h, w):
        raise RuntimeError(f"codec decoded a {tuple(img.shape)} image for a 3x{h}x{w} input")
    return img.detach().float().cpu().clamp(0, 1)


@torch.no_grad()
def code_image(codec: Codec, image: torch.Tensor, tile: int | None = None) -> Coded:
    """Real encode → bytes → decode of [3,H,W] in [0,1], whole or per tile."""
    _, h, w = image.shape
    boxes = tile_boxes(h, w, tile) if tile else [(0, 0, h, w)]
    out = torch.empty_like(image, dtype=torch.float32) if len(boxes) > 1 else None
    nbytes, t_enc, t_dec = 0, 0.0, 0.0
    rec = image
    for top, left, th, tw in boxes:
        part = image[:, top : top + th, left : left + tw].contiguous()
        t0 = time.perf_counter()
        data = codec.encode(part)
        t1 = time.perf_counter()
        rec = _decoded_image(codec.decode(data), th, tw)
        t_dec += time.perf_counter() - t1
        t_enc += t1 - t0
        nbytes += len(data)
        if out is not None:
            out[:, top : top + th, left : left + tw] = rec
    return Coded(nbytes, out if out is not None else rec, len(boxes), t_enc, t_dec)
