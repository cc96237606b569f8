"""DRV-based LIC enhancement: x̂ → x̂_lic by a FiLM-modulated residual CNN."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from hdc_lightning.models.drv.layers import ResBlock, check_image
from hdc_lightning.registry import register


class EnhancerOutput(NamedTuple):
    x_hat_lic: torch.Tensor  # x̂ + residual, not clamped (clamp for display/metrics only)
    residual: torch.Tensor


@register(
    "model",
    "enhancer",
    presets={
        "tiny": dict(ch=16, n_blocks=2, drv_dim=32, unshuffle=2),
        "small": dict(ch=32, n_blocks=3, drv_dim=64, unshuffle=2),
        "paper": dict(ch=64, n_blocks=8, drv_dim=256, unshuffle=2),
    },
)
class LICEnhancer(nn.Module):
    """Restores detail lost by the low-rate LIC stream, steered by the DRV v_L.

    Runs on 2×2-unshuffled pixels (``unshuffle``) to keep full-size images cheap. Every
    residual block is FiLM-modulated by v_L (Linear(drv_dim → 2C)); the tail conv is
    zero-initialised so the module starts as the identity x̂_lic = x̂. ``drv_dim=0``
    builds it without FiLM (the "no DRV" ablation); ``v_L=None`` also means no modulation::

        x̂ ─ unshuffle ─ conv ─ [ResBlock ⊙ FiLM(v_L)] × n ─ conv(0-init) ─ shuffle ─ (+) ─ x̂_lic
        └──────────────────────────────────────────────────────────────────────┘

    Citation: Lu et al., "HDCompression", arXiv 2502.07160 (2025).
    """

    def __init__(self, ch: int = 64, n_blocks: int = 8, drv_dim: int = 256, unshuffle: int = 2):
        super().__init__()
        self.unshuffle, self.drv_dim = unshuffle, drv_dim
        c_in = 3 * unshuffle * unshuffle
        self.head = nn.Conv2d(c_in, ch, 3, padding=1)
        self.blocks = nn.ModuleList([ResBlock(ch, drv_dim) for _ in range(n_blocks)])
        self.tail = nn.Conv2d(ch, c_in, 3, padding=1)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def forward(self, x_hat: torch.Tensor, v_L: torch.Tensor | None = None) -> EnhancerOutput:
        check_image(x_hat, self.unshuffle, "x_hat")
        h = self.head(F.pixel_unshuffle(x_hat, self.unshuffle))
        skip = h
        for block in self.blocks:
            h = block(h, v_L)
        residual = F.pixel_shuffle(self.tail(h + skip), self.unshuffle)
        return EnhancerOutput(x_hat + residual, residual)
