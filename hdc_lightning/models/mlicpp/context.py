"""MLIC++'s context models (Jiang & Wang, "MLIC++: Linear Complexity Multi-Reference Entropy
Modeling for Learned Image Compression", 2023), per slice of y:

- :class:`LocalContext`: non-anchors attend to the anchors of their 5×5 window
  (checkerboard-masked window attention with a relative position bias);
- :class:`ChannelContext`: convs over the slices already decoded;
- :class:`GlobalInterContext`: linear attention over the decoded slices, every position;
- :class:`GlobalIntraContext`: linear attention from the previous slice's anchor/non-anchor
  relation onto the current slice's anchors;
- :class:`EntropyParameters`: a pointwise net to the (scales, means) of each element;
- :class:`ResidualPrediction` (LRP): ``0.5·tanh`` of a conv net, added to the decoded slice.

Each computes through ``self.ops`` (:mod:`~hdc_lightning.models.mlicpp.ops`), so the same
code runs in float for training and in exact fixed point for coding.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import hdc_lightning.models.mlicpp.checkerboard as ckbd
from hdc_lightning.models.mlicpp.ops import FLOAT, MASKED


def _dw_stack(dim: int) -> nn.Sequential:
    """1×1 conv, then a depthwise 3×3 conv: how the global contexts make keys, queries, values."""
    return nn.Sequential(nn.Conv2d(dim, dim, 1), nn.Conv2d(dim, dim, 3, padding=1, groups=dim))


def _dw_mlp(in_ch: int, hidden: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, hidden, 1), nn.GELU(),
        nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden), nn.GELU(),
        nn.Conv2d(hidden, out_ch, 1),
    )  # fmt: skip


class MLP(nn.Module):
    def __init__(self, in_dim: int, hidden: int, out_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(in_dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


def relative_index(window: int) -> Tensor:
    """``[n, n]`` index into the ``(2w-1)²`` bias table for window positions p, q (n = w²)."""
    r = torch.arange(window).repeat_interleave(window)
    c = torch.arange(window).repeat(window)
    dr = r[:, None] - r[None, :] + window - 1
    dc = c[:, None] - c[None, :] + window - 1
    return dr * (2 * window - 1) + dc


def window_mask(h: int, w: int, window: int) -> Tensor:
    """``[h·w, n, n]``: 0 where both window positions are anchors inside the latent, else MASKED."""
    anchors = ckbd.anchor_map(h, w).to(torch.float64)[None, None]
    win = F.unfold(anchors, window, padding=(window - 1) // 2)[0].T  # [L, n]
    both = win[:, :, None] * win[:, None, :]
    return torch.where(both > 0, 0.0, MASKED)


class LocalContext(nn.Module):
    """Window attention among the anchors around each position → 2·dim channels."""

    def __init__(self, dim: int, window: int = 5, heads: int = 2, mlp_ratio: float = 2.0):
        super().__init__()
        if dim % heads:
            raise ValueError(f"local context: {dim} channels do not split into {heads} heads")
        self.dim, self.window, self.heads = dim, window, heads
        self.scale = (dim // heads) ** -0.5
        self.qkv_proj = nn.Linear(dim, 3 * dim)
        self.relative_position_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        nn.init.trunc_normal_(self.relative_position_table, std=0.02)
        self.proj = nn.Linear(2 * dim, 2 * dim)
        self.mlp = MLP(2 * dim, int(2 * dim * mlp_ratio), 2 * dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(2 * dim)
        self.fusion = nn.Conv2d(dim, 2 * dim, kernel_size=window)
        self.register_buffer("relative_index", relative_index(window), persistent=False)
        self.ops = FLOAT

    def forward(self, x: Tensor) -> Tensor:
        ops = self.ops
        b, c, h, w = x.shape
        L, win, n, hd = h * w, self.window, self.window**2, c // self.heads
        t = self.norm1(x.flatten(2).transpose(1, 2))
        qkv = self.qkv_proj(t).transpose(1, 2).reshape(b, 3 * c, h, w)
        windows = F.unfold(qkv, win, padding=(win - 1) // 2).transpose(1, 2).reshape(b, L, 3, c, n)
        # head k takes channels k, k + heads, ... (MLIC++'s split of the channel axis)
        q, k, v = (windows[:, :, i].reshape(b, L, hd, self.heads, n).permute(0, 1, 3, 4, 2) for i in range(3))
        attn = ops.matmul(ops.scale(q, self.scale), k.transpose(-2, -1))
        bias = self.relative_position_table[self.relative_index.flatten()].reshape(n, n, self.heads)
        attn = attn + ops.bias(bias.permute(2, 0, 1))[None, None]
        attn = attn + window_mask(h, w, win).to(attn)[None, :, None]
        out = ops.matmul(ops.softmax(attn, dim=-1), v)  # [b, L, heads, n, hd]
        out = out.permute(0, 1, 2, 4, 3).reshape(b * L, c, win, win)  # channels head-major here
        out = self.proj(self.fusion(out).reshape(b, L, 2 * c))
        out = out + self.mlp(self.norm2(out))
        return out.transpose(1, 2).reshape(b, 2 * c, h, w)


class ChannelContext(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, hidden: Sequence[int] = (192, 128)):
        super().__init__()
        h1, h2 = hidden
        self.fusion = nn.Sequential(
            nn.Conv2d(in_dim, h1, 3, padding=1), nn.GELU(),
            nn.Conv2d(h1, h2, 3, padding=1), nn.GELU(),
            nn.Conv2d(h2, out_dim, 3, padding=1),
        )  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        return self.fusion(x)


def _linear_attention(ops, keys: Tensor, queries: Tensor, values: Tensor, heads: int) -> Tensor:
    """Per head (contiguous channel chunks): softmax(keys) over positions, softmax(queries) over
    channels, ``(keys·valuesᵀ)ᵀ·queries`` → ``[B, C, N]``."""
    out = []
    for key, query, value in zip(keys.chunk(heads, 1), queries.chunk(heads, 1), values.chunk(heads, 1)):
        context = ops.matmul(ops.softmax(key, dim=2), value.transpose(1, 2))
        out.append(ops.matmul(context.transpose(1, 2), ops.softmax(query, dim=1)))
    return torch.cat(out, 1)


class GlobalInterContext(nn.Module):
    """Linear attention over all decoded slices → ``out_dim`` channels."""

    def __init__(self, dim: int, out_dim: int, head_dim: int = 32):
        super().__init__()
        if dim % head_dim:
            raise ValueError(f"global inter context: {dim} channels do not split into heads of {head_dim}")
        self.dim, self.heads = dim, dim // head_dim
        self.keys, self.queries, self.values = _dw_stack(dim), _dw_stack(dim), _dw_stack(dim)
        wide = out_dim * 3 // 2
        self.reprojection = nn.Conv2d(dim, wide, 5, padding=2)
        self.mlp = _dw_mlp(wide, 2 * out_dim, out_dim)
        self.skip = nn.Conv2d(wide, out_dim, 1)
        self.ops = FLOAT

    def forward(self, x: Tensor) -> Tensor:
        b, _, h, w = x.shape
        keys, queries, values = (f(x).reshape(b, self.dim, h * w) for f in (self.keys, self.queries, self.values))
        att = self.reprojection(_linear_attention(self.ops, keys, queries, values, self.heads).reshape(b, -1, h, w))
        return self.skip(att) + self.mlp(att)


class GlobalIntraContext(nn.Module):
    """Linear attention: the previous slice's non-anchors query its anchors, whose weights
    gather the current slice's anchors → 2·dim channels at the non-anchors."""

    def __init__(self, dim: int, heads: int = 2):
        super().__init__()
        self.dim, self.heads = dim, heads
        self.keys, self.queries, self.values = _dw_stack(dim), _dw_stack(dim), _dw_stack(dim)
        self.reprojection = nn.Conv2d(dim, 2 * dim, 5, padding=2)
        self.mlp = _dw_mlp(2 * dim, 4 * dim, 2 * dim)
        self.ops = FLOAT

    def forward(self, previous: Tensor, anchors: Tensor) -> Tensor:
        b, c, h, w = previous.shape
        half = h * w // 2
        queries = ckbd.squeeze(self.queries(ckbd.keep(previous, anchor=False)), anchor=False).reshape(b, c, half)
        keys = ckbd.squeeze(self.keys(ckbd.keep(previous, anchor=True)), anchor=True).reshape(b, c, half)
        values = ckbd.squeeze(self.values(anchors), anchor=True).reshape(b, c, half)
        att = _linear_attention(self.ops, keys, queries, values, self.heads)  # at the non-anchors, squeezed
        att = ckbd.unsqueeze(att.reshape(b, c, h, w // 2), anchor=False)
        att = self.reprojection(att)
        return att + self.mlp(att)


class EntropyParameters(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, hidden: Sequence[int] = (320, 256, 128)):
        super().__init__()
        layers: list[nn.Module] = []
        for a, z in zip([in_dim, *hidden], hidden):
            layers += [nn.Conv2d(a, z, 1), nn.GELU()]
        self.fusion = nn.Sequential(*layers, nn.Conv2d(hidden[-1], out_dim, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.fusion(x)


class ResidualPrediction(nn.Module):
    """LRP: a correction in (−½, ½) for the rounding of the slice just decoded."""

    def __init__(self, in_dim: int, out_dim: int, hidden: Sequence[int] = (224, 128)):
        super().__init__()
        h1, h2 = hidden
        self.lrp_transform = nn.Sequential(
            nn.Conv2d(in_dim, h1, 3, padding=1), nn.GELU(),
            nn.Conv2d(h1, h2, 3, padding=1), nn.GELU(),
            nn.Conv2d(h2, out_dim, 3, padding=1),
        )  # fmt: skip
        self.ops = FLOAT

    def forward(self, x: Tensor) -> Tensor:
        return self.ops.tanh_half(self.lrp_transform(x))
