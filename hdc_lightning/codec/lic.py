"""The LIC-only codec: one image → the LIC model's rANS stream in a ``.hdc`` container."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from hdc_lightning.codec.api import Decoded, ModelId, check_model_id, register_codec
from hdc_lightning.codec.container import Limits, pack, unpack
from hdc_lightning.errors import BitstreamError, DataError, HDCError
from hdc_lightning.models.lic import LIC


def check_image(image: Tensor, limits: Limits) -> None:
    if not isinstance(image, Tensor) or image.dim() != 3 or image.shape[0] != 3 or not image.is_floating_point():
        raise DataError(f"image to encode must be a float Tensor[3,H,W] in [0,1], got {getattr(image, 'shape', image)}")
    h, w = image.shape[-2:]
    if not (1 <= h <= limits.max_side and 1 <= w <= limits.max_side) or h * w > limits.max_pixels:
        raise DataError(f"image of {h}x{w} is outside the format limits ({limits.max_side} per side, {limits.max_pixels} pixels)")


def guard_streams(streams: list[bytes], symbols: list[int]) -> list[bytes]:
    """Zero-pad each stream so the rANS reader can never run past its buffer.

    compressai's decoder reads at most one 32-bit word per symbol plus the bypass bits
    stored in the stream itself, and stops reading once it meets zeros; a forged stream
    therefore stays inside this padding instead of reading foreign memory.
    """
    return [bytes(s) + bytes(4 * n + 16 * len(s) + 64) for s, n in zip(streams, symbols)]


@register_codec("lic", kind=1)
class LICCodec:
    """Encodes with ``LIC.compress``; the file holds its streams (``stream_names()``: one).

    Options: ``device`` runs g_a/g_s there (the entropy side always runs on the CPU);
    ``limits`` bounds what ``decode`` accepts.
    """

    name: str
    kind: int

    def __init__(self, model: LIC, model_id: ModelId, device: str = "cpu", limits: Limits = Limits()):
        self.model = model.eval()
        self.model.g_a.to(device)
        self.model.g_s.to(device)
        self.device = torch.device(device)
        self.model_id = model_id
        self.limits = limits

    def encode(self, image: Tensor) -> bytes:
        check_image(image, self.limits)
        h, w = image.shape[-2:]
        compressed = self.model.compress(image[None].to(self.device, torch.float32))
        streams = [s[0] for s in compressed.strings]
        return pack(self.kind, self.model_id.digest, int(h), int(w), streams, limits=self.limits)

    def decode(self, data: bytes, *, source: str = "<bytes>", **options: Any) -> Decoded:
        if options:
            raise HDCError(f"the lic codec takes no decode option {', '.join(sorted(options))}")
        container = unpack(data, self.limits, source)
        header = container.header
        check_model_id(header, self, source)
        names = self.model.stream_names()
        if len(container.streams) != len(names) or header.params:
            raise BitstreamError(
                f"{source}: {len(container.streams)} streams and {len(header.params)} param bytes, "
                f"the lic codec writes {len(names)} streams and none"
            )
        streams = guard_streams(container.streams, self.model.symbols_per_stream(header.height, header.width))
        try:
            decoded = self.model.decompress([[s] for s in streams], (header.height, header.width))
        except (RuntimeError, ValueError, AssertionError) as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise BitstreamError(f"{source}: payload does not decode ({first})") from None
        image = torch.nan_to_num(decoded.x_hat[0].float().cpu(), nan=0.0).clamp_(0, 1)
        return Decoded(image, dict(zip(names, header.stream_lengths)), header.size)
