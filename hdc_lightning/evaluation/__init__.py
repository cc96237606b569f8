"""Evaluation: metrics, classical baselines, BD-rate, results files, RD/RP figures.

Modules (heavy ones are imported only where used):

* :mod:`.metrics` — PSNR, MS-SSIM, LPIPS, DISTS per image (8-bit images)
* :mod:`.fid` — FID/KID on 256-px patches (+ half-shifted pass)
* :mod:`.classical` — JPEG / WebP / AVIF through Pillow, rate-matched by quality search
* :mod:`.bd` — Bjøntegaard BD-rate and BD-PSNR (piecewise-cubic)
* :mod:`.results` — CompressAI results JSON (read/validate/write) and per-image files
* :mod:`.plot` — RD/RP figures (matplotlib, Agg canvas)
* :mod:`.tiling` and :mod:`.runner` — the ``hdc eval`` loop with real bitstreams

No Lightning here: the RD/RP figure of training runs is :mod:`hdc_lightning.callbacks.rdp`.
"""

from hdc_lightning.evaluation.bd import BDError, bd_psnr, bd_quality, bd_rate
from hdc_lightning.evaluation.results import Curve, ResultsError, read_curve, write_curve

__all__ = ["BDError", "Curve", "ResultsError", "bd_psnr", "bd_quality", "bd_rate", "read_curve", "write_curve"]
