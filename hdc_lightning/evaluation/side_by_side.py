"""One PNG that shows what a hybrid file holds: original | fidelity x̂_lic | perceptual x̃."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

CAPTION_PX = 22  # one caption line under each panel
GAP_PX = 6


def side_by_side(panels: Sequence[torch.Tensor], captions: Sequence[str], title: str = "") -> Image.Image:
    """Panels ``[3,H,W]`` in [0, 1] of one size, left to right, a caption under each, a title line."""
    if len(panels) != len(captions) or not panels:
        raise ValueError("one caption per panel, at least one panel")
    h, w = panels[0].shape[-2:]
    top = CAPTION_PX if title else 0
    canvas = Image.new("RGB", (len(panels) * w + (len(panels) - 1) * GAP_PX, top + h + CAPTION_PX), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    if title:
        draw.text((4, 4), title, fill="black", font=font)
    for i, (img, cap) in enumerate(zip(panels, captions)):
        arr = (img.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
        x0 = i * (w + GAP_PX)
        canvas.paste(Image.fromarray(np.ascontiguousarray(arr)), (x0, top))
        draw.text((x0 + 4, top + h + 5), cap, fill="black", font=font)
    return canvas


def describe(metrics: dict[str, float]) -> str:
    """``PSNR 24.1 dB, LPIPS 0.312`` from a MetricSuite result (missing metrics left out)."""
    parts = [f"PSNR {metrics['psnr-rgb']:.1f} dB"]
    if "lpips" in metrics:
        parts.append(f"LPIPS {metrics['lpips']:.3f}")
    return ", ".join(parts)
