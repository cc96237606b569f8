"""Phase 3, ``drv``: the DRV diffusion, with the LIC and VQ streams frozen.

Step 1 (``global_step < phase.denoise_start``, stage ``drv/extract``): the extractor
learns ground-truth DRVs from (x̂, x) together with the modules they steer: enhancer
(L1/MSE of x̂_lic against x), index predictor T (cross-entropy on the masked positions of
training masks) and VQ correction (L1, + LPIPS with ``perceptual_weight``, of x̃).
Step 2 (``drv/denoise``): the denoising networks learn to reproduce those DRVs from x̂
alone (4-step unrolled chain, L1 + KL, :class:`~hdc_lightning.losses.drv.DRVMatchLoss`).
In step 2 the extractor rests: it is the teacher, and a moving target would also drift
away from the DRVs the fusion modules were trained on. ``joint_fusion=true``
(``drv/denoise+fusion``) keeps training enhancer, T and correction in step 2 on the
unrolled DRVs (DiffIR's joint stage 2); by default they wait for phase 4.

What each step trains, rests and freezes: :data:`hdc_lightning.phases.hybrid.STAGES`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from hdc_lightning import registry
from hdc_lightning.phases.hybrid import STAGES, HybridPhase, HybridPhaseConfig, Stage


@dataclass
class DRVConfig(HybridPhaseConfig):
    name: str = "drv"
    sampler_lr: float = 2e-4  # denoising networks (step 2)
    denoise_start: int = 1000  # batches of step 1; step 2 runs from here to trainer.max_steps
    joint_fusion: bool = False  # step 2 also trains enhancer/T/correction on the unrolled DRVs
    match_l1_weight: float = 1.0
    match_kl_weight: float = 1.0
    match_temperature: float = 0.15


@registry.register("phase", "drv")
class DRVDiffusion(HybridPhase):
    """Phase 3: ground-truth DRVs with the fusion modules (step 1), then the denoisers (step 2)."""

    Config = DRVConfig
    # The perceptual decoder starts as a copy of the VQ stage's decoder (skipped when "latent").
    needs = ("model.lic", "model.vq", "model.perceptual.g_s", "model.perceptual.post_quant")

    def __init__(self, cfg: Mapping[str, Any]):
        super().__init__(cfg)
        self.match = registry.build_from("loss", "drv_match", self.c, where="phase", prefix="match_")

    def stage(self) -> Stage:
        if self.model.sampler is None or self.global_step < self.c.denoise_start:
            return STAGES["drv/extract"]
        return STAGES["drv/denoise+fusion" if self.c.joint_fusion else "drv/denoise"]

    def stage_losses(self, stage: Stage, x: Tensor, out) -> tuple[Tensor, dict[str, Any]]:
        loss, logs = 0.0, {"step2": float(stage is not STAGES["drv/extract"])}
        if "match" in stage.losses:
            names = self.model.drv_names
            matches = [self.match(out.drvs.get(n), out.drv_target.get(n)) for n in names]
            loss = sum(t.loss for t in matches)
            logs.update(drv_l1=sum(t.l1 for t in matches) / len(names), drv_kl=sum(t.kl for t in matches) / len(names))
        if "fusion" in stage.losses:
            fusion_loss, fusion_logs = self.fusion_losses(x, out)
            loss, logs = loss + fusion_loss, {**logs, **fusion_logs}
        return loss, logs
