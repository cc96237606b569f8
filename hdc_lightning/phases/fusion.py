"""Phase 4, ``fusion``: fine-tune enhancer, T and correction on *sampled* DRVs.

In phase 3 the fusion modules learned with ground-truth DRVs from the extractor, which
the decoder never has. Here they see exactly what the decoder computes: DRVs sampled
from x̂ by the denoisers, starting from the seeded noise of the codec's default seed
(``random_seeds=true`` draws a new seed per batch instead, for robustness to any header
seed). The LIC stream, the VQ encoder/codebook/prior and the extractor stay frozen, so
files stay decodable with the same bitstream semantics.

``end_to_end=true`` also trains, at ``e2e_lr``, the denoising networks (through the
sampled DRVs) and the VQ decoder (g_s, post_quant: decode side only, the index stream is
unchanged). What each variant trains and freezes: :data:`hdc_lightning.phases.hybrid.STAGES`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from hdc_lightning import registry
from hdc_lightning.phases.hybrid import STAGES, HybridPhase, HybridPhaseConfig, Stage


@dataclass
class FusionConfig(HybridPhaseConfig):
    name: str = "fusion"
    lr: float = 5e-5  # enhancer, predictor T, correction
    end_to_end: bool = False  # also train the denoisers and the VQ decoder
    e2e_lr: float = 1e-5
    random_seeds: bool = False  # a random DRV seed per batch instead of the codec's default seed


@registry.register("phase", "fusion")
class FusionFinetune(HybridPhase):
    """Phase 4: the fusion modules on the DRVs the decoder will sample."""

    Config = FusionConfig
    needs = (
        "model.lic",
        "model.vq",
        "model.sampler",
        "model.enhancer",
        "model.predictor",
        "model.correction",
        "model.perceptual",
    )

    def stage(self) -> Stage:
        return STAGES["fusion/end_to_end" if self.c.end_to_end else "fusion"]

    def drv_seed(self) -> int | None:
        return int(torch.randint(0, 2**31 - 1, (1,))) if self.c.random_seeds else None
