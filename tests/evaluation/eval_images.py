"""Synthetic photo-like images for evaluation tests (no dependence on ../shared)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def photo_like(height: int, width: int, seed: int = 0) -> torch.Tensor:
    """[3,H,W] in [0,1]: smooth colour regions plus fine texture, so codecs behave as on photos."""
    g = torch.Generator().manual_seed(seed)
    coarse = F.interpolate(torch.rand(1, 3, 6, 8, generator=g), size=(height, width), mode="bicubic",
                           align_corners=False)
    mid = F.interpolate(torch.rand(1, 3, height // 8 + 1, width // 8 + 1, generator=g), size=(height, width),
                        mode="bilinear", align_corners=False)
    fine = torch.rand(1, 1, height, width, generator=g)
    return (0.6 * coarse + 0.3 * mid + 0.1 * fine)[0].clamp(0, 1)
