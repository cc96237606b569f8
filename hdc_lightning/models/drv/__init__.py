"""Dense representative vectors (DRVs): the training-time extractor, the denoising
networks and their deterministic few-step sampler (decode side, 0 bits)."""

from hdc_lightning.models.drv.extractor import DRV_NAMES, DRVExtractor, DRVs
from hdc_lightning.models.drv.layers import FiLM, GridEncoder, ResBlock, VectorEncoder
from hdc_lightning.models.drv.sampler import DRVSampler, make_betas, seeded_noise

__all__ = [
    "DRV_NAMES",
    "DRVExtractor",
    "DRVSampler",
    "DRVs",
    "FiLM",
    "GridEncoder",
    "ResBlock",
    "VectorEncoder",
    "make_betas",
    "seeded_noise",
]
