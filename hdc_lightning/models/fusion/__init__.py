"""Fusion of the two streams: the DRV-guided LIC enhancer, the index predictor T and the
VQ correction module and the perceptual decoder (plain nn.Modules; the phases and the codec wire them up)."""

from hdc_lightning.models.fusion.correction import CorrectionOutput, VQCorrection
from hdc_lightning.models.fusion.enhancer import EnhancerOutput, LICEnhancer
from hdc_lightning.models.fusion.perceptual import PERCEPTUAL_MODES, SFT, PerceptualDecoder
from hdc_lightning.models.fusion.predictor import (
    IndexPredictor,
    PredictorOutput,
    masked_accuracy,
    masked_cross_entropy,
    sincos_2d,
)

__all__ = [
    "CorrectionOutput",
    "EnhancerOutput",
    "IndexPredictor",
    "PERCEPTUAL_MODES",
    "PerceptualDecoder",
    "SFT",
    "LICEnhancer",
    "PredictorOutput",
    "VQCorrection",
    "masked_accuracy",
    "masked_cross_entropy",
    "sincos_2d",
]
