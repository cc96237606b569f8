"""The entropy side in fixed point: the same numbers on every CPU, thread count and GPU.

Whatever decides which CDF table codes a symbol, and which value a decoded symbol becomes
(h_s, the channel and checkerboard contexts, the parameter-aggregation nets), must come
out bit-identical at both ends of a file, on any machine. Float convolutions do not: each
kernel set (AVX-512, AVX2, generic, oneDNN's ISA level, CUDA) sums in its own order and
rounds differently, and one flipped table index desynchronises rANS for the rest of the
image. This module runs those nets as integer networks (after Ballé, Johnston & Minnen,
"Integer Networks for Data Compression with Latent-Variable Models", ICLR 2019), carried
in float64 so the ordinary convolution kernels do the work:

- every activation is rounded to the grid ``2**-ACT_BITS`` and clamped to
  ``±ACT_LIMIT`` (23 significant bits: exact in float32 too);
- every weight is rounded to a per-layer grid ``2**-shift``, with ``shift`` the largest
  value that keeps each output's sum of ``|integer weights|`` within ``2**SUM_BITS``
  (checked in int64, so the choice itself is exact), the bias to ``2**-(ACT_BITS + shift)``;
- so every product and every partial sum of a convolution is an integer multiple of
  ``2**-(ACT_BITS + shift)`` below ``2**52`` of those units: float64 represents all of them
  exactly, and any summation order, blocking, FMA or thread split gives the same result.

Nothing here reads float transcendental functions; the weights' rounding is an elementwise
IEEE operation. Cost against the float path: see docs/format.md (Kodak, the small model).
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ACT_BITS = 12  # activations on a grid of 2**-12
ACT_LIMIT = 2.0**11  # and clamped to ±2048: 23 significant bits at most
SUM_BITS = 29  # Σ|w_int| ≤ 2**29 per output, so |Σ a_int·w_int| ≤ 2**(23+29) = 2**52
_MAX_SHIFT = 40


def to_grid(x: Tensor) -> Tensor:
    """Round ``x`` (float64) to the activation grid, clamped to ±ACT_LIMIT (exact everywhere)."""
    scale = 2.0**ACT_BITS
    return torch.floor(x.clamp(-ACT_LIMIT, ACT_LIMIT) * scale + 0.5) / scale


def _output_sums(w_int: Tensor, transposed: bool, groups: int) -> Tensor:
    """Σ|w_int| over everything one output element sums (int64, an upper bound for transposed)."""
    a = w_int.abs().to(torch.int64)
    if not transposed:
        return a.flatten(1).sum(1)  # [out, in/groups, kh, kw]
    # [in, out/groups, kh, kw]: an output sums over the inputs of its group and (a subset of) the taps
    per = a.sum((2, 3))
    return torch.stack([g.sum(0) for g in per.chunk(groups, 0)]).flatten()


def integer_weights(weight: Tensor, transposed: bool = False, groups: int = 1) -> tuple[Tensor, int]:
    """``(w_int, shift)``: the largest ``shift`` with every output's Σ|round(w·2**shift)| ≤ 2**SUM_BITS."""
    w = weight.detach().to(torch.float64)
    if not bool(torch.isfinite(w).all()):
        raise ValueError("non-finite weights cannot enter the fixed-point entropy side")
    # start where the largest single weight fits (frexp is exact), so no int64 conversion overflows
    top = math.frexp(float(w.abs().max()))[1] if w.numel() else 0
    for shift in range(min(_MAX_SHIFT, SUM_BITS - top), -_MAX_SHIFT, -1):
        w_int = torch.round(w * 2.0**shift)
        if int(_output_sums(w_int, transposed, groups).max()) <= 2**SUM_BITS:
            return w_int, shift
    raise ValueError("weights too large for the fixed-point entropy side")


class FixedPointConv(nn.Module):
    """A Conv2d / ConvTranspose2d (masked convs included) in exact fixed-point arithmetic."""

    def __init__(self, conv: nn.Conv2d | nn.ConvTranspose2d):
        super().__init__()
        self.transposed = isinstance(conv, nn.ConvTranspose2d)
        weight = conv.weight.detach().to(torch.float64)
        mask = getattr(conv, "mask", None)  # compressai's masked convs multiply it in at forward
        if mask is not None:
            weight = weight * mask.to(torch.float64)
        w_int, self.shift = integer_weights(weight, self.transposed, conv.groups)
        self.register_buffer("weight", w_int / 2.0**self.shift)
        bias_units = 2.0 ** (ACT_BITS + self.shift)
        b = torch.zeros(conv.out_channels, dtype=torch.float64) if conv.bias is None else conv.bias.detach()
        b_int = torch.round(b.to(torch.float64) * bias_units)
        if float(b_int.abs().max()) > 2.0**52:
            raise ValueError("bias too large for the fixed-point entropy side")
        self.register_buffer("bias", b_int / bias_units)
        self.stride, self.padding, self.groups = conv.stride, conv.padding, conv.groups
        self.dilation = conv.dilation
        self.output_padding = getattr(conv, "output_padding", (0, 0))

    def forward(self, x: Tensor) -> Tensor:
        x = to_grid(x.to(torch.float64))
        if self.transposed:
            y = F.conv_transpose2d(
                x, self.weight, self.bias, self.stride, self.padding, self.output_padding, self.groups, self.dilation
            )
        else:
            y = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        return to_grid(y)


def _convs(module: nn.Module) -> list[tuple[nn.Module, str, nn.Module]]:
    found = []
    for parent in module.modules():
        for name, child in parent.named_children():
            if isinstance(child, (nn.Conv2d, nn.ConvTranspose2d)):
                found.append((parent, name, child))
    return found


@torch.no_grad()
def exact_latent_codec(latent_codec: nn.Module) -> nn.Module:
    """A CPU float64 copy of ``latent_codec`` whose every convolution is a :class:`FixedPointConv`.

    The entropy models (CDF tables, medians, scale table) are copied as stored; their
    float buffers become float64 exactly. ReLU, concatenation, masking and the table
    look-up (comparisons with the scale table) are exact on the grid values.
    """
    lc = copy.deepcopy(latent_codec).to(device="cpu", dtype=torch.float64).eval()
    for parent, name, conv in _convs(lc):
        setattr(parent, name, FixedPointConv(conv))
    return lc
