"""VQ correction: fix the codebook latent with continuous-stream features before the VQ decoder."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from hdc_lightning.models.drv.layers import GridEncoder, ResBlock, check_image
from hdc_lightning.registry import register


class CorrectionOutput(NamedTuple):
    z: torch.Tensor  # corrected latent z' = z_q + delta, [B, D, h, w], fed to the VQ decoder
    delta: torch.Tensor


@register(
    "model",
    "correction",
    presets={
        "tiny": dict(code_dim=32, ch=32, cond_ch=16, n_blocks=2, drv_dim=32),
        "small": dict(code_dim=64, ch=48, cond_ch=24, n_blocks=2, drv_dim=64),
        "paper": dict(code_dim=256, ch=256, cond_ch=128, n_blocks=4, drv_dim=256),
    },
)
class VQCorrection(nn.Module):
    """z' = z_q + Δ(z_q, Enc(x̂_lic), v), with a zero-initialised output so it starts as identity.

    ``z_q`` is ``codebook[d̂]`` (the VQ model's ``embed(indices)``) for the completed index
    map d̂; Enc is a conv encoder of x̂_lic down to the token grid (1/16). The residual
    blocks are FiLM-modulated by a DRV when one is given (``drv_dim=0`` or ``v=None``:
    no modulation). The "no VQ correction" ablation simply skips this module::

        z_q ──────── conv1×1 ─┐
        x̂_lic ─ Enc (1/16) ───┴ (+) ─ [ResBlock ⊙ FiLM(v)] × n ─ conv1×1(0-init) ─ Δ ─ (+) z_q ─ z'

    Citation: Lu et al., "HDCompression", arXiv 2502.07160 (2025); HybridFlow, ACM MM 2024.
    """

    def __init__(self, code_dim: int = 256, ch: int = 256, cond_ch: int = 128, n_blocks: int = 4, drv_dim: int = 256):
        super().__init__()
        self.code_dim = code_dim
        self.enc = GridEncoder(cond_ch, ch)
        self.z_in = nn.Conv2d(code_dim, ch, 1)
        self.blocks = nn.ModuleList([ResBlock(ch, drv_dim) for _ in range(n_blocks)])
        self.out = nn.Conv2d(ch, code_dim, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, z_q: torch.Tensor, x_hat_lic: torch.Tensor, v: torch.Tensor | None = None) -> CorrectionOutput:
        check_image(x_hat_lic, 16, "x_hat_lic")
        grid = (x_hat_lic.shape[-2] // 16, x_hat_lic.shape[-1] // 16)
        if z_q.dim() != 4 or z_q.shape[1] != self.code_dim or tuple(z_q.shape[-2:]) != grid:
            raise ValueError(f"z_q must be [B, {self.code_dim}, {grid[0]}, {grid[1]}], got {tuple(z_q.shape)}")
        h = self.z_in(z_q) + self.enc(x_hat_lic)
        for block in self.blocks:
            h = block(h, v)
        delta = self.out(h)
        return CorrectionOutput(z_q + delta, delta)
