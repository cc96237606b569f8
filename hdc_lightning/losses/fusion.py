"""The fusion loss of phases 3 and 4: what the enhancer, T and the decoder of x̃ learn from.

::

    enhancer_weight   · d(x̂_lic, x)                     fidelity output (l1 | mse)
  + index_weight      · CE(T's logits, true indices)     on the tokens that are not sent
  + correction_weight · d(x̃, x)                         perceptual output's fidelity term
  + perceptual_weight · a · LPIPS(x̃, x)                  per example, a = its realism level
  + adversarial_weight · a · (−D(x̃ | x̂_lic))           conditional GAN (losses/adversarial.py)

a ~ U[0, 1] per example for a realism-conditioned decoder (1 otherwise), so a = 0 stays the
MSE-optimal decoder (Agustsson et al., CVPR 2023). Images in [0, 1].
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hdc_lightning.errors import ConfigError
from hdc_lightning.losses.adversarial import ConditionalAdversarialLoss
from hdc_lightning.losses.perceptual import PerceptualLoss
from hdc_lightning.models.fusion import masked_accuracy, masked_cross_entropy
from hdc_lightning.models.hybrid.model import HDCOutput
from hdc_lightning.registry import register

PIXEL_LOSSES = {"l1": F.l1_loss, "mse": F.mse_loss}


class FusionLossOutput(NamedTuple):
    loss: Tensor  # everything for the one backward (the discriminator's hinge loss included)
    terms: dict[str, Any]  # the parts, for the logs (None: not computed)


@register("loss", "fusion")
class FusionLoss(nn.Module):
    """Keyword-only, no defaults: they live in the hybrid phases' config (``HybridPhaseConfig``)."""

    def __init__(
        self,
        *,
        enhancer_loss: str,
        enhancer_weight: float,
        index_weight: float,
        label_smoothing: float,
        correction_loss: str,
        correction_weight: float,
        perceptual_weight: float,
        lpips_net: str,
        lpips_random_backbone: bool,
        lpips_backbone: str | None,
        adversarial_weight: float,
        adversarial_start: int,
        disc_channels: int,
    ):
        super().__init__()
        for key, value in (("enhancer_loss", enhancer_loss), ("correction_loss", correction_loss)):
            if value not in PIXEL_LOSSES:
                raise ConfigError(f"phase.{key}: '{value}' is not one of {', '.join(PIXEL_LOSSES)}")
        self.enhancer_loss, self.correction_loss = enhancer_loss, correction_loss
        self.enhancer_weight, self.index_weight, self.correction_weight = (
            enhancer_weight,
            index_weight,
            correction_weight,
        )
        self.label_smoothing = label_smoothing
        self.perceptual_weight, self.adversarial_weight = perceptual_weight, adversarial_weight
        self.adversarial_start = adversarial_start
        self.perceptual = (
            PerceptualLoss(lpips_net, lpips_random_backbone, lpips_backbone) if perceptual_weight > 0 else None
        )
        # The discriminator belongs to training only: it is this loss's, never the model's.
        self.adversarial = ConditionalAdversarialLoss(disc_channels) if adversarial_weight > 0 else None

    def forward(self, x: Tensor, out: HDCOutput, step: int) -> FusionLossOutput:
        """``step``: the batch counter the adversarial start is compared with."""
        rec = PIXEL_LOSSES[self.enhancer_loss](out.x_hat_lic, x)
        ce = masked_cross_entropy(out.logits, out.indices, out.sent, self.label_smoothing)
        corr = PIXEL_LOSSES[self.correction_loss](out.x_tilde, x)
        loss = self.enhancer_weight * rec + self.index_weight * ce + self.correction_weight * corr
        terms: dict[str, Any] = {
            "enhancer_loss": rec,
            "index_ce": ce,
            f"correction_{self.correction_loss}": corr,
            "index_acc": masked_accuracy(out.logits, out.indices, out.sent),
            "lpips": None,
        }
        a = out.realism
        if self.perceptual is not None:
            per_sample = self.perceptual(out.x_tilde, x, per_sample=True)
            weights = a if a is not None else torch.ones_like(per_sample)
            loss = loss + self.perceptual_weight * (weights * per_sample).mean()
            terms["lpips"] = per_sample.mean()
        if self.adversarial is not None:
            adv = self.adversarial(x, out.x_tilde, out.x_hat_lic, a)
            on = 1.0 if step >= self.adversarial_start else 0.0  # 0·term keeps the graph the same for DDP
            loss = loss + on * self.adversarial_weight * adv.g_loss + adv.d_loss
            terms.update(g_adv=adv.g_loss, d_loss=adv.d_loss, d_real=adv.logits_real, d_fake=adv.logits_fake)
        return FusionLossOutput(loss, terms)
