"""The VQ-only codec: one image → its full index map under the model's prior, in a ``.hdc`` file.

What a VQ stage (trained, or imported with ``hdc import``) codes alone: every index of the
f16 map, rANS-coded with the learned prior (uniform for imported weights: log2 K bits an
index, e.g. 0.039 bpp for K = 1024), decoded by the VQ decoder. ``hdc eval STAGE_DIR``
measures it like any other rate point.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from hdc_lightning.codec.api import Decoded, ModelId, check_model_id, register_codec
from hdc_lightning.codec.container import Limits, pack, unpack
from hdc_lightning.codec.tiles import TiledCoding, check_image, check_tile
from hdc_lightning.errors import BitstreamError, HDCError, first_line
from hdc_lightning.models.lic import pad_image
from hdc_lightning.models.vq import VQModel


@register_codec("vq", kind=3)
class VQCodec(TiledCoding):
    """Options: ``device`` runs the encoder/decoder there (the index coder runs on the CPU);
    ``limits`` bounds what ``decode`` accepts; ``tile`` how ``encode`` tiles (codec.tiles.plan)."""

    name: str
    kind: int

    def __init__(
        self, model: VQModel, model_id: ModelId, device: str = "cpu", limits: Limits = Limits(), tile: int | None = None
    ):
        check_tile(tile, limits)
        self.model = model.eval().to(device)
        self.device = torch.device(device)
        self.model_id, self.limits, self.tile = model_id, limits, tile

    def _grid(self, h: int, w: int) -> tuple[int, int]:
        f = self.model.downsample
        return -(-h // f), -(-w // f)

    @torch.no_grad()
    def encode_one(self, image: Tensor) -> bytes:
        check_image(image, self.limits)
        h, w = (int(s) for s in image.shape[-2:])
        x = pad_image(image[None].to(self.device, torch.float32), self.model.downsample)
        indices = self.model.encode_indices(x)[0].cpu()
        data = self.model.index_coder().encode_indices(indices)
        return pack(self.kind, self.model_id.digest, h, w, [data], limits=self.limits)

    @torch.no_grad()
    def decode_one(self, data: bytes, *, source: str = "<bytes>", **options: Any) -> Decoded:
        if options:
            raise HDCError(f"the vq codec takes no decode option {', '.join(sorted(options))}")
        container = unpack(data, self.limits, source)
        header = container.header
        check_model_id(header, self, source)
        if len(container.streams) != 1 or header.params:
            raise BitstreamError(f"{source}: {len(container.streams)} streams, the vq codec writes one index stream")
        try:
            indices = self.model.index_coder().decode_indices(
                container.streams[0], self._grid(header.height, header.width)
            )
        except BitstreamError as e:  # the index coder's own message (checksum, length) without the file
            raise BitstreamError(f"{source}: {e}") from None
        except (RuntimeError, ValueError) as e:
            raise BitstreamError(f"{source}: index stream does not decode ({first_line(e)})") from None
        x_hat = self.model.decode_indices(indices[None].to(self.device))[0, :, : header.height, : header.width]
        image = torch.nan_to_num(x_hat.float().cpu(), nan=0.0).clamp_(0, 1)
        return Decoded(image, {"indices": header.stream_lengths[0]}, header.size)
