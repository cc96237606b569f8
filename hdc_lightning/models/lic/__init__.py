"""LIC stream: ELIC-class transforms + compressai hyperprior/channel/checkerboard entropy model."""

from hdc_lightning.models.lic.buffers import resize_entropy_buffers
from hdc_lightning.models.lic.model import (
    LIC,
    PAD_MULTIPLE,
    LICCompressed,
    LICDecoded,
    LICOutput,
    entropy_side,
    estimated_bits,
    pad_image,
    padded_size,
)

__all__ = [
    "LIC",
    "LICCompressed",
    "LICDecoded",
    "LICOutput",
    "PAD_MULTIPLE",
    "entropy_side",
    "estimated_bits",
    "pad_image",
    "padded_size",
    "resize_entropy_buffers",
]
