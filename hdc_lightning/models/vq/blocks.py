"""VQGAN-class convolutional encoder ``g_a`` and decoder ``g_s`` (residual blocks, attention at the lowest resolution).

Each level of ``ch_mult`` holds ``num_res_blocks`` residual blocks; every level but the last
halves the resolution, so ``len(ch_mult) = 5`` gives the f16 token grid of the paper.

``padding_mode`` applies to every 3×3 conv and to the encoder's down-sampling pad. VQGAN
pads with zeros, which tells every conv where the image edge is; on small training crops
(a 128² crop is 8×8 tokens, most of them near an edge) ``"replicate"`` keeps the frame's
statistics those of the interior. Neither causes the border band seen on Kodak: both code the
frame of a picture as well alone as inside it (docs/vq.md); the `small` preset uses ``"replicate"``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn


def norm(channels: int, groups: int | None = None) -> nn.GroupNorm:
    """GroupNorm over ``groups`` groups (imported VQGANs: always 32). By default up to 32
    groups (VQGAN's choice) but at least 4 channels a group for narrow tiny nets."""
    if groups is not None:
        return nn.GroupNorm(groups, channels, eps=1e-6)
    groups = max(1, min(32, channels // 4))
    while channels % groups:
        groups -= 1
    return nn.GroupNorm(groups, channels, eps=1e-6)


PAD_MODES = ("zeros", "replicate", "reflect")


def conv3(cin: int, cout: int, padding_mode: str) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1, padding_mode=padding_mode)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, padding_mode: str = "zeros", groups: int | None = None):
        super().__init__()
        self.norm1, self.conv1 = norm(cin, groups), conv3(cin, cout, padding_mode)
        self.norm2, self.conv2 = norm(cout, groups), conv3(cout, cout, padding_mode)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class AttnBlock(nn.Module):
    """Single-head spatial self-attention (tokens = positions of the feature map)."""

    def __init__(self, channels: int, groups: int | None = None):
        super().__init__()
        self.norm = norm(channels, groups)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).flatten(2).transpose(1, 2).chunk(3, dim=-1)  # [B, hw, C] each
        out = F.scaled_dot_product_attention(q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1)).squeeze(1)
        return x + self.proj(out.transpose(1, 2).reshape(b, c, h, w))


def _level(cin: int, cout: int, n_blocks: int, attn: bool, pm: str, g: int | None) -> tuple[nn.ModuleList, int]:
    blocks: list[nn.Module] = []
    for _ in range(n_blocks):
        blocks.append(ResBlock(cin, cout, pm, g))
        cin = cout
        if attn:
            blocks.append(AttnBlock(cout, g))
    return nn.ModuleList(blocks), cin


def _mid(c: int, attn: bool, pm: str, g: int | None) -> nn.Sequential:
    return nn.Sequential(ResBlock(c, c, pm, g), AttnBlock(c, g) if attn else nn.Identity(), ResBlock(c, c, pm, g))


def _check_mode(padding_mode: str) -> str:
    if padding_mode not in PAD_MODES:
        raise ValueError(f"padding_mode must be one of {', '.join(PAD_MODES)}, got '{padding_mode}'")
    return padding_mode


class Encoder(nn.Module):
    """``g_a``: image in [-1, 1] ``[B,3,H,W]`` → latent ``[B,z_channels,H/f,W/f]``, f = 2^(len(ch_mult)-1)."""

    def __init__(
        self,
        ch: int,
        ch_mult: Sequence[int],
        num_res_blocks: int,
        z_channels: int,
        attn_lowest: bool = True,
        padding_mode: str = "zeros",
        norm_groups: int | None = None,
    ):
        super().__init__()
        pm, g = _check_mode(padding_mode), norm_groups
        self.pad_mode = "constant" if pm == "zeros" else pm
        self.conv_in = conv3(3, ch, pm)
        self.levels, self.down = nn.ModuleList(), nn.ModuleList()
        c = ch
        last = len(ch_mult) - 1
        for i, m in enumerate(ch_mult):
            blocks, c = _level(c, ch * m, num_res_blocks, attn_lowest and i == last, pm, g)
            self.levels.append(blocks)
            # Strided conv halves the resolution; asymmetric padding keeps H/2 exactly (as VQGAN).
            self.down.append(nn.Conv2d(c, c, 3, stride=2) if i < last else nn.Identity())
        self.mid = _mid(c, attn_lowest, pm, g)
        self.norm_out = norm(c, g)
        self.conv_out = conv3(c, z_channels, pm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for blocks, down in zip(self.levels, self.down):
            for blk in blocks:
                h = blk(h)
            if isinstance(down, nn.Conv2d):
                h = down(F.pad(h, (0, 1, 0, 1), mode=self.pad_mode))
        h = self.mid(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    """``g_s``: latent ``[B,z_channels,h,w]`` → image in about [-1, 1] ``[B,3,h*f,w*f]``."""

    def __init__(
        self,
        ch: int,
        ch_mult: Sequence[int],
        num_res_blocks: int,
        z_channels: int,
        attn_lowest: bool = True,
        padding_mode: str = "zeros",
        norm_groups: int | None = None,
    ):
        super().__init__()
        pm, g = _check_mode(padding_mode), norm_groups
        c = ch * ch_mult[-1]
        self.conv_in = conv3(z_channels, c, pm)
        self.mid = _mid(c, attn_lowest, pm, g)
        self.levels, self.up = nn.ModuleList(), nn.ModuleList()
        last = len(ch_mult) - 1
        for i in reversed(range(len(ch_mult))):
            blocks, c = _level(c, ch * ch_mult[i], num_res_blocks + 1, attn_lowest and i == last, pm, g)
            self.levels.append(blocks)
            self.up.append(conv3(c, c, pm) if i > 0 else nn.Identity())
        self.norm_out = norm(c, g)
        self.conv_out = conv3(c, 3, pm)

    def up_channels(self) -> dict[int, int]:
        """{scale s: channels of the feature map at 1/s right after each up-sampling conv}."""
        n = len(self.up)
        return {2 ** (n - 2 - k): up.out_channels for k, up in enumerate(self.up) if isinstance(up, nn.Conv2d)}

    def forward(
        self, z: torch.Tensor, inject: Callable[[torch.Tensor, int], torch.Tensor] | None = None
    ) -> torch.Tensor:
        """``inject(h, s)``, when given, may modulate the map at 1/s after each up-sampling conv."""
        h = self.mid(self.conv_in(z))
        n = len(self.up)
        for k, (blocks, up) in enumerate(zip(self.levels, self.up)):
            for blk in blocks:
                h = blk(h)
            if isinstance(up, nn.Conv2d):
                h = up(F.interpolate(h, scale_factor=2.0, mode="nearest"))
                if inject is not None:
                    h = inject(h, 2 ** (n - 2 - k))
        return self.conv_out(F.silu(self.norm_out(h)))
