"""MLIC++'s transforms: residual GDN blocks for g_a/g_s, GELU conv stacks for h_a/h_s.

Sizes as Jiang & Wang publish them (N = 192, M = 320): ``g_a`` is three stride-2 residual
blocks (GDN on their main branch, a strided 1×1 skip), each followed by a plain residual
block, then a stride-2 3×3 conv to M channels; ``g_s`` mirrors it with sub-pixel
upsampling and inverse GDN. ``h_a`` takes y to z at 1/4 of y's size; ``h_s`` returns 2·M
channels (the scales seed, then the means seed).
"""

from __future__ import annotations

import math

import compressai.layers
import torch
from compressai.layers import conv3x3, subpel_conv3x3
from compressai.ops.parametrizers import NonNegativeParametrizer
from torch import Tensor, nn


class GDN(compressai.layers.GDN):
    """compressai's GDN (same state, same forward), initialised from Python floats: its own
    ``__init__`` does tensor arithmetic with a CPU buffer, which fails on the meta device
    where checkpoints are sized before they are built (``codec.api``)."""

    def __init__(self, ch: int, inverse: bool = False, beta_min: float = 1e-6, gamma_init: float = 0.1):
        nn.Module.__init__(self)
        self.inverse = bool(inverse)
        self.beta_reparam = NonNegativeParametrizer(minimum=beta_min)
        self.gamma_reparam = NonNegativeParametrizer()
        pedestal = self.beta_reparam.reparam_offset**2
        self.beta = nn.Parameter(torch.full((ch,), math.sqrt(1.0 + pedestal)))
        gamma = torch.full((ch, ch), math.sqrt(pedestal))
        self.gamma = nn.Parameter(gamma.fill_diagonal_(math.sqrt(gamma_init + pedestal)))


def conv1x1(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=1, stride=stride)


class StridedBlock(nn.Module):
    """3×3 conv (strided) → GELU → 3×3 conv → GDN, plus a strided 1×1 skip."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 2):
        super().__init__()
        self.conv1 = conv3x3(in_ch, out_ch, stride=stride)
        self.act = nn.GELU()
        self.conv2 = conv3x3(out_ch, out_ch)
        self.gdn = GDN(out_ch)
        self.skip = conv1x1(in_ch, out_ch, stride=stride) if stride != 1 or in_ch != out_ch else None

    def forward(self, x: Tensor) -> Tensor:
        out = self.gdn(self.conv2(self.act(self.conv1(x))))
        return out + (x if self.skip is None else self.skip(x))


class UpsampleBlock(nn.Module):
    """Sub-pixel 3×3 conv → GELU → 3×3 conv → inverse GDN, plus a sub-pixel skip."""

    def __init__(self, in_ch: int, out_ch: int, upsample: int = 2):
        super().__init__()
        self.subpel_conv = subpel_conv3x3(in_ch, out_ch, upsample)
        self.act = nn.GELU()
        self.conv = conv3x3(out_ch, out_ch)
        self.igdn = GDN(out_ch, inverse=True)
        self.upsample = subpel_conv3x3(in_ch, out_ch, upsample)

    def forward(self, x: Tensor) -> Tensor:
        return self.igdn(self.conv(self.act(self.subpel_conv(x)))) + self.upsample(x)


class PlainBlock(nn.Module):
    """3×3 conv → GELU → 3×3 conv → GELU, plus the identity (a 1×1 conv if widths differ)."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.conv1 = conv3x3(in_ch, out_ch)
        self.act = nn.GELU()
        self.conv2 = conv3x3(out_ch, out_ch)
        self.skip = conv1x1(in_ch, out_ch) if in_ch != out_ch else None

    def forward(self, x: Tensor) -> Tensor:
        out = self.act(self.conv2(self.act(self.conv1(x))))
        return out + (x if self.skip is None else self.skip(x))


def analysis(N: int, M: int) -> nn.Sequential:
    """``g_a``: x → y at 1/16."""
    return nn.Sequential(
        StridedBlock(3, N), PlainBlock(N, N),
        StridedBlock(N, N), PlainBlock(N, N),
        StridedBlock(N, N), PlainBlock(N, N),
        conv3x3(N, M, stride=2),
    )  # fmt: skip


def synthesis(N: int, M: int) -> nn.Sequential:
    """``g_s``: y_hat → x_hat."""
    return nn.Sequential(
        PlainBlock(M, M), UpsampleBlock(M, N),
        PlainBlock(N, N), UpsampleBlock(N, N),
        PlainBlock(N, N), UpsampleBlock(N, N),
        PlainBlock(N, N), subpel_conv3x3(N, 3, 2),
    )  # fmt: skip


def hyper_analysis(M: int, N: int) -> nn.Sequential:
    """``h_a``: y → z at 1/4 of y."""
    return nn.Sequential(
        conv3x3(M, N), nn.GELU(),
        conv3x3(N, N), nn.GELU(),
        conv3x3(N, N, stride=2), nn.GELU(),
        conv3x3(N, N), nn.GELU(),
        conv3x3(N, N, stride=2),
    )  # fmt: skip


def hyper_synthesis(M: int, N: int) -> nn.Sequential:
    """``h_s``: z_hat → 2·M hyper parameters at y's size."""
    wide = M * 3 // 2
    return nn.Sequential(
        conv3x3(N, M), nn.GELU(),
        subpel_conv3x3(M, M, 2), nn.GELU(),
        conv3x3(M, wide), nn.GELU(),
        subpel_conv3x3(wide, wide, 2), nn.GELU(),
        conv3x3(wide, 2 * M),
    )  # fmt: skip
