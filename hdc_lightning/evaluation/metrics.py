"""Per-image quality metrics: PSNR, MS-SSIM (torchmetrics), LPIPS (lpips), DISTS (torchmetrics).

Every metric is computed on 8-bit images (values rounded to k/255), i.e. on what a
decoded PNG holds, so learned and classical codecs are measured alike. LPIPS and DISTS
run on the ImageNet trunks that ``hdc weights`` writes (``make install`` runs it); when
those are missing or damaged the metric is reported as unavailable — once, with the fix —
and left out of the results instead of failing the evaluation.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torchmetrics.functional.image import (
    multiscale_structural_similarity_index_measure,
    peak_signal_noise_ratio,
)

from hdc_lightning.errors import HDCError

PSNR_CAP_DB = 100.0  # identical 8-bit images: PSNR is infinite; JSON needs a number
# 5-scale MS-SSIM with an 11-px window needs the coarsest scale to hold one window.
MSSSIM_MIN_SIDE = (11 - 1) * 2**4 + 1

_announced: set[str] = set()

# LPIPS's AlexNet trunk leaves no feature map from a side under 31 px; such an image gets no
# LPIPS (and a curve holding one no LPIPS mean, as with MS-SSIM).
LPIPS_MIN_SIDE = 31


def note_once(key: str, message: str) -> None:
    """Print a notice to stderr the first time ``key`` is seen in this process."""
    if key not in _announced:
        _announced.add(key)
        print(f"hdc: note: {message}", file=sys.stderr)


def hub_checkpoint(filename: str) -> Path:
    """Where torch.hub (and torchvision) look for a downloaded weights file."""
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def quantize8(x: torch.Tensor) -> torch.Tensor:
    """[..,3,H,W] float in [0,1] → the same values rounded to 8 bits (float32, batched)."""
    x = x.detach().float()
    if x.dim() == 3:
        x = x.unsqueeze(0)
    return (x.clamp(0, 1) * 255).round() / 255


def _psnr8(a8: torch.Tensor, b8: torch.Tensor) -> float:
    value = float(peak_signal_noise_ratio(b8, a8, data_range=1.0))
    return min(value, PSNR_CAP_DB) if not math.isnan(value) else PSNR_CAP_DB


def _ms_ssim8(a8: torch.Tensor, b8: torch.Tensor) -> float | None:
    if min(a8.shape[-2:]) < MSSSIM_MIN_SIDE:
        note_once(
            "ms-ssim-small",
            f"MS-SSIM needs images of at least {MSSSIM_MIN_SIDE} px a side; smaller images get no MS-SSIM",
        )
        return None
    return float(multiscale_structural_similarity_index_measure(b8, a8, data_range=1.0))


def psnr_rgb(ref: torch.Tensor, rec: torch.Tensor) -> float:
    """PSNR over all RGB samples of the 8-bit images, in dB (capped at PSNR_CAP_DB)."""
    return _psnr8(quantize8(ref), quantize8(rec))


def ms_ssim_rgb(ref: torch.Tensor, rec: torch.Tensor) -> float | None:
    """5-scale MS-SSIM of the 8-bit images; ``None`` when a side is under MSSSIM_MIN_SIDE px."""
    return _ms_ssim8(quantize8(ref), quantize8(rec))


class MetricUnavailable(HDCError):
    """An optional metric cannot run here (missing package or weights file)."""


def _perceptual(loader: str, *args) -> torch.nn.Module:
    """Build an LPIPS/DISTS net through :mod:`hdc_lightning.losses.perceptual` (never downloads)."""
    try:
        from hdc_lightning.losses import perceptual
    except ImportError as e:
        raise MetricUnavailable(f"LPIPS/DISTS loader cannot be imported ({e})") from None
    try:
        return getattr(perceptual, loader)(*args)
    except HDCError as e:
        raise MetricUnavailable(str(e)) from None


def _load_lpips(net: str, random_backbone: bool = False) -> torch.nn.Module:
    return _perceptual("load_lpips", net, random_backbone)


def _load_dists() -> torch.nn.Module:
    return _perceptual("load_dists")


class MetricSuite:
    """Computes every available per-image metric; optional ones degrade to 'unavailable'.

    >>> suite = MetricSuite(lpips=False, dists=False)
    >>> suite(ref, rec)           # {'psnr-rgb': ..., 'ms-ssim-rgb': ...}
    >>> suite.unavailable         # {'lpips': 'reason', ...}
    """

    def __init__(
        self,
        lpips: bool = True,
        dists: bool = False,
        lpips_net: str = "alex",
        device: str = "cpu",
        lpips_random_backbone: bool = False,
        ms_ssim: bool = True,
    ):
        # lpips_random_backbone: tests only — exercises the code path, is not a metric.
        # ms_ssim=False: torchmetrics' MS-SSIM of a whole 6-MPix image peaks at a few GiB.
        self.device = torch.device(device)
        self.ms_ssim = ms_ssim
        self.unavailable: dict[str, str] = {}
        self._nets: dict[str, torch.nn.Module] = {}
        self._wanted: dict[str, Callable[[], torch.nn.Module]] = {}
        if lpips:
            self._wanted["lpips"] = lambda: _load_lpips(lpips_net, lpips_random_backbone)
        if dists:
            self._wanted["dists"] = _load_dists

    def _net(self, name: str) -> torch.nn.Module | None:
        if name in self._nets:
            return self._nets[name]
        if name in self.unavailable or name not in self._wanted:
            return None
        try:
            net = self._wanted[name]().to(self.device).eval()
        except MetricUnavailable as e:
            self.unavailable[name] = str(e)
            note_once(f"unavailable-{name}", f"{name.upper()} unavailable, left out of the results: {e}")
            return None
        for p in net.parameters():
            p.requires_grad_(False)
        self._nets[name] = net
        return net

    def available(self, name: str) -> bool:
        return self._net(name) is not None

    @torch.no_grad()
    def __call__(self, ref: torch.Tensor, rec: torch.Tensor) -> dict[str, float]:
        """Metrics of one image pair ([3,H,W] or [1,3,H,W], values in [0,1])."""
        if ref.shape[-3:] != rec.shape[-3:]:
            raise ValueError(f"image sizes differ: {tuple(ref.shape)} vs {tuple(rec.shape)}")
        a, b = quantize8(ref), quantize8(rec)
        out: dict[str, float] = {"psnr-rgb": _psnr8(a, b)}
        ms = _ms_ssim8(a, b) if self.ms_ssim else None
        if ms is not None:
            out["ms-ssim-rgb"] = ms
        a, b = a.to(self.device), b.to(self.device)
        lp = self._net("lpips")
        if lp is not None and min(a.shape[-2:]) < LPIPS_MIN_SIDE:
            note_once(
                "lpips-small", f"LPIPS needs images of at least {LPIPS_MIN_SIDE} px a side; smaller images get none"
            )
        elif lp is not None:
            # lpips expects [-1, 1] inputs.
            out["lpips"] = float(lp(b * 2 - 1, a * 2 - 1).mean())
        ds = self._net("dists")
        if ds is not None:
            out["dists"] = float(ds(b, a).mean())
        return out
