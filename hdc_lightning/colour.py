"""Colour conversions shared by the losses and the diagnostics (one definition of YCbCr)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

# BT.601 RGB → YCbCr rows (Y, Cb, Cr) for values in [0, 1] (Cb/Cr centred on 0).
YCBCR = torch.tensor([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])


def block_ycbcr(x: torch.Tensor, block: int) -> torch.Tensor:
    """Y, Cb and Cr of ``block``-pixel averages: ``[B,3,H,W]`` in [0, 1] → ``[B,3,⌈H/block⌉,⌈W/block⌉]``
    (differentiable, so a loss can use it)."""
    pooled = F.avg_pool2d(x.float(), block, ceil_mode=True) if block > 1 else x.float()
    return torch.einsum("cn,bnhw->bchw", YCBCR.to(x.device), pooled)


def block_chroma(x: torch.Tensor, block: int) -> torch.Tensor:
    """Cb and Cr of ``block``-pixel averages, ``[B,2,⌈H/block⌉,⌈W/block⌉]``."""
    return block_ycbcr(x, block)[:, 1:]
