"""One real encode → bytes → decode of an image, as evaluation counts it.

Large images are tiled by the codec itself (:mod:`hdc_lightning.codec.tiles`): one file per
image whatever its size, so a tiled bpp is the size of a real file (one small header per
tile included) and the decoder's memory stays bounded (CLIC, Tecnick and larger).
"""

from __future__ import annotations

import time
from typing import NamedTuple, Protocol

import torch

from hdc_lightning.codec.tiles import tile_count


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


def _decoded_image(decoded, h: int, w: int) -> torch.Tensor:
    img = getattr(decoded, "image", decoded)
    if img.dim() == 4:
        img = img[0]
    if tuple(img.shape) != (3, h, w):
        raise RuntimeError(f"codec decoded a {tuple(img.shape)} image for a 3x{h}x{w} input")
    return img.detach().float().cpu().clamp(0, 1)


@torch.no_grad()
def code_image(codec: Codec, image: torch.Tensor) -> Coded:
    """Real encode → bytes → decode of [3,H,W] in [0,1]."""
    _, h, w = image.shape
    t0 = time.perf_counter()
    data = codec.encode(image)
    t1 = time.perf_counter()
    rec = _decoded_image(codec.decode(data), h, w)
    t2 = time.perf_counter()
    return Coded(len(data), rec, tile_count(data), t1 - t0, t2 - t1)
