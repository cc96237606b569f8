"""The LIC-only codec: one image → the LIC model's rANS stream in a ``.hdc`` container."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from hdc_lightning.codec.api import Decoded, ModelId, check_model_id, register_codec
from hdc_lightning.codec.container import Limits, pack, unpack
from hdc_lightning.codec.tiles import TiledCoding, check_image, check_tile
from hdc_lightning.errors import BitstreamError, HDCError, first_line
from hdc_lightning.models.lic import LIC

# A valid stream spends at most 16 bits on a symbol plus 36 bits of bypass (a count nibble
# and 8 value nibbles of an int32), and ends with the coder's 8-byte final state.
MAX_STREAM_BYTES_PER_SYMBOL = 7


def guard_streams(streams: list[bytes], symbols: list[int], source: str = "<bytes>") -> list[bytes]:
    """Refuse a stream longer than its symbols can need; zero-pad the others so the rANS
    reader can never run past its buffer.

    compressai's decoder reads at most one 32-bit word per symbol, plus the bypass nibbles
    a bypass symbol declares. A declared count grows by at most 15 per 4 bits taken from
    the stream (a valid stream never declares more than 8) and stops growing at the first
    zero nibble, so a stream of L bytes makes it read at most 15·L bytes of zeros past its
    end. With L capped at 7 bytes per symbol the padding, 15·L + 8 bytes per symbol (a
    word each, and a word to spare for the rare bypass met inside the padding), is at most
    113 bytes per symbol of the image the header declares, whatever the file size.
    """
    out = []
    for i, (s, n) in enumerate(zip(streams, symbols)):
        if len(s) > MAX_STREAM_BYTES_PER_SYMBOL * n + 16:
            raise BitstreamError(
                f"{source}: stream {i} has {len(s)} bytes for {n} symbols, more than a valid "
                f"stream can hold ({MAX_STREAM_BYTES_PER_SYMBOL} bytes per symbol)"
            )
        out.append(bytes(s) + bytes(15 * len(s) + 8 * n + 64))
    return out


@register_codec("lic", kind=1)
class LICCodec(TiledCoding):
    """Encodes with ``LIC.compress``; the file holds its streams (``stream_names()``: one).

    Options: ``device`` runs g_a/g_s there (the entropy side always runs on the CPU);
    ``limits`` bounds what ``decode`` accepts; ``tile`` how ``encode`` tiles (codec.tiles.plan).
    """

    name: str
    kind: int

    def __init__(
        self, model: LIC, model_id: ModelId, device: str = "cpu", limits: Limits = Limits(), tile: int | None = None
    ):
        check_tile(tile, limits)
        self.model = model.eval()
        self.model.g_a.to(device)
        self.model.g_s.to(device)
        self.device = torch.device(device)
        self.model_id = model_id
        self.limits, self.tile = limits, tile

    def encode_one(self, image: Tensor) -> bytes:
        check_image(image, self.limits)
        h, w = image.shape[-2:]
        compressed = self.model.compress(image[None].to(self.device, torch.float32))
        streams = [s[0] for s in compressed.strings]
        return pack(self.kind, self.model_id.digest, int(h), int(w), streams, limits=self.limits)

    def decode_one(self, data: bytes, *, source: str = "<bytes>", **options: Any) -> Decoded:
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
        streams = guard_streams(container.streams, self.model.symbols_per_stream(header.height, header.width), source)
        try:
            decoded = self.model.decompress([[s] for s in streams], (header.height, header.width))
        except (RuntimeError, ValueError, AssertionError) as e:
            first = first_line(e)
            raise BitstreamError(f"{source}: payload does not decode ({first})") from None
        image = torch.nan_to_num(decoded.x_hat[0].float().cpu(), nan=0.0).clamp_(0, 1)
        return Decoded(image, dict(zip(names, header.stream_lengths)), header.size)


@register_codec("mlicpp", kind=4)
class MLICPPCodec(LICCodec):
    """An MLIC++ stream (``hdc import mlicpp``): the lic codec's layout under its own kind byte."""
