"""The HDCompression model ("hdc"): both streams, the DRVs and the fusion, with compress/decompress."""

from hdc_lightning.models.hybrid.coding import OUTPUTS, TOKEN, HDCCompressed, HDCDecoded, token_grid
from hdc_lightning.models.hybrid.model import DRV_MODES, PARTS, HDCModel, HDCOutput, part_spec

__all__ = [
    "DRV_MODES",
    "HDCCompressed",
    "HDCDecoded",
    "HDCModel",
    "HDCOutput",
    "OUTPUTS",
    "PARTS",
    "TOKEN",
    "part_spec",
    "token_grid",
]
