"""Classical codec baselines (JPEG, WebP, AVIF) through Pillow, matched to a target rate.

For each image the encoder's integer quality is binary-searched so that the real file
size (bytes from Pillow's encoder, × 8 / pixels) comes as close as possible to the
target bpp — the usual way to put a classical codec "at the same rate" as a learned one.
AVIF is used only when this Pillow was built with it (``PIL.features.check('avif')``).
Encoder settings are fixed and recorded (JPEG: optimised Huffman tables, 4:2:0; WebP:
method 4; AVIF: speed 6, 4:2:0) so numbers are reproducible.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image, features

from hdc_lightning.codec.container import bits_per_pixel
from hdc_lightning.errors import HDCError


@dataclass(frozen=True)
class ClassicalCodec:
    name: str
    pil_format: str
    feature: str  # PIL.features name that says whether this Pillow can write it
    q_min: int
    q_max: int
    options: Mapping[str, Any] = field(default_factory=dict)

    def settings(self) -> str:
        opts = ", ".join(f"{k}={v}" for k, v in self.options.items())
        return f"Pillow {self.pil_format} ({opts})" if opts else f"Pillow {self.pil_format}"


CODECS: dict[str, ClassicalCodec] = {
    "jpeg": ClassicalCodec("jpeg", "JPEG", "jpg", 1, 100, {"optimize": True, "subsampling": "4:2:0"}),
    "webp": ClassicalCodec("webp", "WEBP", "webp", 0, 100, {"method": 4}),
    "avif": ClassicalCodec("avif", "AVIF", "avif", 0, 100, {"speed": 6, "subsampling": "4:2:0"}),
}


class CodecUnsupported(HDCError):
    """The requested classical codec is unknown or not built into this Pillow."""


def supported() -> list[str]:
    """The classical codecs this Pillow can encode, in CODECS order."""
    return [name for name, c in CODECS.items() if features.check(c.feature)]


def get(name: str) -> ClassicalCodec:
    if name not in CODECS:
        raise CodecUnsupported(f"unknown classical codec '{name}' (choose from {', '.join(CODECS)})")
    codec = CODECS[name]
    if not features.check(codec.feature):
        raise CodecUnsupported(f"this Pillow ({Image.__version__}) was built without {codec.pil_format} support")
    return codec


def to_pil(image: torch.Tensor) -> Image.Image:
    """[3,H,W] (or [1,3,H,W]) float in [0,1] → 8-bit RGB PIL image."""
    if image.dim() == 4:
        image = image[0]
    array = (image.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(np.ascontiguousarray(array), "RGB")


def from_pil(img: Image.Image) -> torch.Tensor:
    array = np.asarray(img.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float() / 255


def encode(codec: ClassicalCodec, img: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=codec.pil_format, quality=int(quality), **codec.options)
    return buf.getvalue()


def decode(data: bytes) -> torch.Tensor:
    with Image.open(io.BytesIO(data)) as img:
        return from_pil(img)


@dataclass(frozen=True)
class Encoded:
    codec: str
    quality: int
    data: bytes
    bpp: float
    target_bpp: float

    @property
    def rate_error(self) -> float:
        """Relative distance of the achieved rate from the target (0.05 = 5 %)."""
        return abs(self.bpp / self.target_bpp - 1.0)


class RateMatcher:
    """Binary search of the quality that meets a target bpp, remembering file sizes.

    ``key`` identifies an image across calls (e.g. its file name): matching the same
    validation images to new targets re-encodes only qualities not tried yet. Only sizes
    are cached (a few integers per image), never the encoded bytes.
    """

    def __init__(self) -> None:
        self._sizes: dict[tuple[str, str, int], int] = {}

    def match(self, codec_name: str, image: torch.Tensor | Image.Image, target_bpp: float, key: str = "") -> Encoded:
        codec = get(codec_name)
        if not (target_bpp > 0 and math.isfinite(target_bpp)):
            raise ValueError(f"target bpp must be positive, got {target_bpp}")
        img = image if isinstance(image, Image.Image) else to_pil(image)
        key = key or f"id{id(image)}"
        pixels = img.width * img.height
        last: dict[int, bytes] = {}

        def bpp(q: int) -> float:
            ck = (codec.name, key, q)
            if ck not in self._sizes:
                last.clear()
                last[q] = encode(codec, img, q)
                self._sizes[ck] = len(last[q])
            return bits_per_pixel(self._sizes[ck], pixels)

        lo, hi = codec.q_min, codec.q_max
        if bpp(lo) >= target_bpp:
            best = lo  # even the lowest quality spends more: closest reachable point
        elif bpp(hi) <= target_bpp:
            best = hi
        else:
            # Invariant: bpp(lo) < target < bpp(hi); rate grows with quality.
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if bpp(mid) <= target_bpp:
                    lo = mid
                else:
                    hi = mid
            best = min((lo, hi), key=lambda q: abs(math.log(bpp(q) / target_bpp)))
        data = last.get(best) or encode(codec, img, best)
        return Encoded(codec.name, best, data, bits_per_pixel(len(data), pixels), target_bpp)


def evaluate_at_rates(
    codec_name: str,
    images: Sequence[tuple[str, torch.Tensor]],
    targets: Sequence[float],
    metric_fn: Callable[[torch.Tensor, torch.Tensor], Mapping[str, float]],
    matcher: RateMatcher | None = None,
) -> list[dict[str, Any]]:
    """Per-image records of ``codec_name`` with each image matched to its own target bpp."""
    if len(images) != len(targets):
        raise ValueError("one target bpp per image is needed")
    matcher = matcher or RateMatcher()
    records = []
    for (name, image), target in zip(images, targets):
        enc = matcher.match(codec_name, image, target, key=name)
        rec = decode(enc.data)
        records.append(
            {
                "name": name,
                "bytes": len(enc.data),
                "bpp": enc.bpp,
                "target_bpp": target,
                "quality": enc.quality,
                **metric_fn(image, rec),
            }
        )
    return records
