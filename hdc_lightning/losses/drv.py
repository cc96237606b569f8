"""DRV matching loss: sampled DRVs must match the ground-truth ones from the extractor."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from hdc_lightning.errors import ConfigError
from hdc_lightning.registry import register


class DRVMatchOutput(NamedTuple):
    loss: torch.Tensor  # l1_weight * l1 + kl_weight * kl
    l1: torch.Tensor
    kl: torch.Tensor


@register("loss", "drv_match")
class DRVMatchLoss(nn.Module):
    """L1 + KL(softmax(target/T) ‖ softmax(pred/T)) between DRVs, T ≈ 0.15.

    The KL term compares the vectors' shapes (which channels dominate) as DiffIR's
    knowledge-distillation loss does; L1 pins their values. The target is detached:
    the ground-truth extractor is a teacher here, not trained through this loss.

    Citation: Xia et al., "DiffIR", ICCV 2023; Lu et al., "HDCompression", arXiv 2502.07160.
    """

    def __init__(self, *, l1_weight: float, kl_weight: float, temperature: float):
        """No defaults: they live in the DRV phase's config (``match_*`` of ``DRVConfig``)."""
        super().__init__()
        if temperature <= 0:
            raise ConfigError(f"phase.match_temperature: must be > 0, got {temperature}")
        self.l1_weight, self.kl_weight, self.temperature = l1_weight, kl_weight, temperature

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> DRVMatchOutput:
        if pred.shape != target.shape or pred.dim() != 2:
            raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must both be [B, dim]")
        target = target.detach()
        l1 = F.l1_loss(pred, target)
        log_p = F.log_softmax(pred / self.temperature, dim=1)
        log_q = F.log_softmax(target / self.temperature, dim=1)
        kl = F.kl_div(log_p, log_q, reduction="batchmean", log_target=True)
        return DRVMatchOutput(self.l1_weight * l1 + self.kl_weight * kl, l1, kl)
