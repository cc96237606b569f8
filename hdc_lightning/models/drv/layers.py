"""Small building blocks shared by the DRV networks and the fusion modules.

``FiLM`` is how a dense representative vector (DRV) steers a network: a linear map
of the vector gives a per-channel scale and shift. Its projection is zero-initialised,
so a freshly built module behaves as if no DRV were given, and ``v=None`` (the
"no DRV" ablation) is always accepted and means identity modulation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FiLM(nn.Module):
    """``h * (1 + gamma(v)) + beta(v)``; identity when ``v`` is None or ``drv_dim`` is 0."""

    def __init__(self, drv_dim: int, channels: int):
        super().__init__()
        self.proj = nn.Linear(drv_dim, 2 * channels) if drv_dim > 0 else None
        if self.proj is not None:
            nn.init.zeros_(self.proj.weight)
            nn.init.zeros_(self.proj.bias)

    def forward(self, h: torch.Tensor, v: torch.Tensor | None) -> torch.Tensor:
        if v is None:
            return h
        if self.proj is None:
            raise ValueError("this module was built without a DRV (drv_dim=0) but was given one")
        gamma, beta = self.proj(v).chunk(2, dim=1)
        if h.dim() == 4:  # conv map [B, C, H, W]
            gamma, beta = gamma[:, :, None, None], beta[:, :, None, None]
        else:  # tokens [B, N, C]
            gamma, beta = gamma[:, None, :], beta[:, None, :]
        return h * (1 + gamma) + beta


class ResBlock(nn.Module):
    """conv → act → FiLM → conv, added to the input (no norm: the nets are small)."""

    def __init__(self, ch: int, drv_dim: int = 0):
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)
        self.act = nn.LeakyReLU(0.2)
        self.film = FiLM(drv_dim, ch)

    def forward(self, x: torch.Tensor, v: torch.Tensor | None = None) -> torch.Tensor:
        h = self.act(self.conv1(x))
        h = self.film(h, v)
        return x + self.conv2(self.act(h))


def check_image(x: torch.Tensor, multiple: int, name: str = "image") -> None:
    """Programming-error guard: a float [B, 3, H, W] batch with H, W multiples of ``multiple``."""
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"{name} must be [B, 3, H, W], got {tuple(x.shape)}")
    if x.shape[-2] % multiple or x.shape[-1] % multiple:
        raise ValueError(f"{name} height and width must be multiples of {multiple}, got {tuple(x.shape[-2:])}")


class VectorEncoder(nn.Module):
    """Image(s) → one vector: pixel-unshuffle(4) → conv → res blocks → strided convs → pool → MLP.

    The first step folds 4×4 pixels into channels (as DiffIR's prior extractor does), so
    the convolutions run at 1/4 resolution and stay cheap on full-size images.
    """

    def __init__(self, in_ch: int, ch: int, n_blocks: int, n_down: int, out_dim: int, hidden: int | None = None):
        super().__init__()
        self.head = nn.Conv2d(in_ch * 16, ch, 3, padding=1)
        self.blocks = nn.Sequential(*[ResBlock(ch) for _ in range(n_blocks)])
        downs, c = [], ch
        for i in range(n_down):
            c_out = ch * min(2 ** (i + 1), 4)
            downs += [nn.Conv2d(c, c_out, 3, stride=2, padding=1), nn.LeakyReLU(0.2)]
            c = c_out
        self.downs = nn.Sequential(*downs)
        self.out_ch = c
        hidden = hidden or 2 * out_dim
        self.mlp = None
        if out_dim:
            self.mlp = nn.Sequential(nn.Linear(c, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, out_dim))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled trunk feature [B, out_ch] (before the MLP)."""
        h = self.head(F.pixel_unshuffle(x, 4))
        h = self.downs(self.blocks(h))
        return h.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.features(x))


class GridEncoder(nn.Module):
    """Image → feature map on the VQ token grid (1/16): unshuffle(4) → conv → 2× (stride-2 conv, res block)."""

    def __init__(self, ch: int, out_ch: int, n_blocks: int = 1):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3 * 16, ch, 3, padding=1), nn.LeakyReLU(0.2)]
        layers += [ResBlock(ch) for _ in range(n_blocks)]
        for _ in range(2):
            layers += [nn.Conv2d(ch, ch, 3, stride=2, padding=1), nn.LeakyReLU(0.2)]
            layers += [ResBlock(ch) for _ in range(n_blocks)]
        layers.append(nn.Conv2d(ch, out_ch, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(F.pixel_unshuffle(x, 4))
