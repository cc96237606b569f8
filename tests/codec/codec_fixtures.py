"""Helpers of the codec tests: the seeded tiny LIC model and a deterministic test image."""

from __future__ import annotations

import math

import torch

from hdc_lightning.registry import build

TINY_SPEC = {"name": "lic", "preset": "tiny", "args": {}}


def seeded_tiny(seed: int = 0):
    torch.manual_seed(seed)
    return build("model", "lic", preset="tiny").eval()


def sample_image(h: int = 96, w: int = 128) -> torch.Tensor:
    """A deterministic smooth-plus-edges RGB image in [0,1], no RNG involved."""
    yy = torch.linspace(0, 1, h)[:, None]
    xx = torch.linspace(0, 1, w)[None, :]
    r = 0.5 + 0.4 * torch.sin(6 * math.pi * xx * yy)
    g = (xx + yy) / 2
    b = ((xx * 8).floor() + (yy * 6).floor()) % 2 * 0.6 + 0.2
    return torch.stack([r, g.expand(h, w), b]).clamp(0, 1)
