"""Codecs and the ``.hdc`` container: encode an image to a file and back.

``container`` is the versioned file format shared by every codec; ``api`` the
protocol, registry and ``load_codec``; ``lic`` the LIC-only codec, ``vq`` the VQ-only one
(a VQ stage's full index map).
"""

from hdc_lightning.codec.api import (
    Decoded,
    ImageCodec,
    ModelId,
    check_model_id,
    codec_names,
    export_checkpoint,
    fingerprint,
    load_codec,
    register_codec,
)
from hdc_lightning.codec.container import Container, Header, Limits, overhead_bytes, pack, unpack
from hdc_lightning.codec.hybrid import HybridCodec
from hdc_lightning.codec.lic import LICCodec
from hdc_lightning.codec.vq import VQCodec

__all__ = [
    "Container",
    "Decoded",
    "Header",
    "HybridCodec",
    "ImageCodec",
    "LICCodec",
    "Limits",
    "ModelId",
    "check_model_id",
    "codec_names",
    "export_checkpoint",
    "fingerprint",
    "load_codec",
    "overhead_bytes",
    "pack",
    "register_codec",
    "unpack",
    "VQCodec",
]
