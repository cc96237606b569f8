"""RDPFigureCallback: an RD/RP figure in TensorBoard at every validation.

At each validation end (rank 0) the callback reads the phase's logged validation metrics
(real bpp, PSNR, LPIPS or MS-SSIM), writes them to ``<run_dir>/rdp.json`` (one rate
point, CompressAI schema), gathers the same file from sibling run directories of a
ladder (same phase and model), measures JPEG/WebP/AVIF on the same validation images at
the matching rates (rate search cached), and logs one figure: bpp vs PSNR and bpp vs
the perceptual metric. At the end of training it logs the hyper-parameters with the
final metrics (TensorBoard's HPARAMS tab).

Usage: ``fit(cfg, extra_callbacks=[RDPFigureCallback()])``.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any, Sequence

import lightning as L
import torch

from hdc_lightning.evaluation import classical
from hdc_lightning.evaluation.results import Curve, ResultsError, curve_from_points, read_curve, write_curve

RDP_FILE = "rdp.json"
BPP_KEYS = ("val/bpp_real", "val/bpp_file", "val/bpp", "val/bpp_indices", "val/bpp_est")
PSNR_KEYS = ("val/psnr_real", "val/psnr")
LPIPS_KEYS = ("val/lpips",)
MSSSIM_KEYS = ("val/ms_ssim", "val/ms-ssim")


def _first(metrics: dict[str, Any], keys: Sequence[str]) -> float | None:
    for k in keys:
        v = metrics.get(k)
        if v is not None:
            v = float(v)
            if math.isfinite(v):
                return v
    return None


class RDPFigureCallback(L.Callback):
    """Logs ``tag`` (a matplotlib figure) to TensorBoard after each validation.

    Args:
        codecs: classical codecs to draw (those this Pillow cannot write are dropped).
        max_images: validation images kept (first ones seen) for the classical codecs.
        siblings: also draw the rate points of sibling run directories (a ladder).
        lpips: measure LPIPS of the classical codecs (when its weights are present).
    """

    def __init__(self, codecs: Sequence[str] = ("jpeg", "webp", "avif"), max_images: int = 4, siblings: bool = True,
                 lpips: bool = True, tag: str = "val/rdp"):
        self.codecs = [c for c in codecs if c in classical.supported()]
        self.max_images = max_images
        self.siblings = siblings
        self.tag = tag
        self.history: list[dict[str, float]] = []
        self._images: list[tuple[str, torch.Tensor]] = []  # uint8 [3,H,W]
        self._collecting = True
        self._matcher = classical.RateMatcher()
        self._classical_cache: dict[tuple[str, float], dict[str, float]] = {}
        self._lpips = lpips
        self._suite = None
        self.drawn: list[str] = []  # names of the curves in the last figure (for inspection)

    # ---- state survives resume --------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"history": list(self.history)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))

    # ---- collect validation images once ------------------------------------------------
    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if not self._collecting or trainer.sanity_checking or not trainer.is_global_zero or not self.codecs:
            return
        images = batch if isinstance(batch, torch.Tensor) else batch[0]
        sizes = None if isinstance(batch, torch.Tensor) or len(batch) < 2 else batch[1]
        names = batch[2] if not isinstance(batch, torch.Tensor) and len(batch) > 2 else None
        for i in range(images.shape[0]):
            if len(self._images) >= self.max_images:
                break
            x = images[i]
            if sizes is not None:
                h, w = (int(v) for v in sizes[i])
                x = x[:, :h, :w]
            name = str(names[i]) if names is not None else f"val{len(self._images)}"
            self._images.append((name, (x.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu()))

    # ---- one rate point per validation -------------------------------------------------
    def _point(self, trainer, pl_module) -> dict[str, float] | None:
        m = {k: v for k, v in trainer.callback_metrics.items()}
        bpp, psnr = _first(m, BPP_KEYS), _first(m, PSNR_KEYS)
        if bpp is None or psnr is None or bpp <= 0:
            return None
        point = {"bpp": bpp, "psnr-rgb": psnr, "step": float(trainer.global_step)}
        lp, ms = _first(m, LPIPS_KEYS), _first(m, MSSSIM_KEYS)
        if lp is not None:
            point["lpips"] = lp
        if ms is not None:
            point["ms-ssim-rgb"] = ms
        return point

    @staticmethod
    def _identity(pl_module) -> dict[str, Any]:
        cfg = getattr(pl_module, "cfg", {}) or {}
        model = cfg.get("model") or {}
        return {"phase": (cfg.get("phase") or {}).get("name"), "model": model.get("name"), "preset": model.get("preset")}

    def _sibling_curves(self, run_dir: Path, ident: dict[str, Any]) -> list[Curve]:
        out = []
        if not self.siblings or not run_dir.parent.is_dir():
            return out
        for path in sorted(run_dir.parent.glob(f"*/{RDP_FILE}")):
            if path.parent == run_dir:
                continue
            try:
                curve = read_curve(path)
            except ResultsError:
                continue  # a sibling mid-write or foreign file: skip, never fail training
            if all(curve.meta.get(k) == v for k, v in ident.items()):
                out.append(curve)
        return out

    def _classical_point(self, codec: str, target: float) -> dict[str, float]:
        key = (codec, round(target, 6))
        if key not in self._classical_cache:
            if self._suite is None:
                from hdc_lightning.evaluation.metrics import MetricSuite

                self._suite = MetricSuite(lpips=self._lpips, dists=False)
            from hdc_lightning.evaluation.results import aggregate

            imgs = [(n, x.float() / 255) for n, x in self._images]
            recs = classical.evaluate_at_rates(codec, imgs, [target] * len(imgs), self._suite, self._matcher)
            self._classical_cache[key] = aggregate(recs)
        return self._classical_cache[key]

    def _figure(self, current: dict[str, float], ladder: list[dict[str, float]], name: str):
        from hdc_lightning.evaluation.plot import rd_figure

        pts = sorted(ladder + [current], key=lambda p: p["bpp"])
        now, earlier = f"{name} (step {int(current['step'])})", "this run, earlier validations"
        curves = [curve_from_points("ladder", pts)] if len(pts) > 1 else []
        if len(self.history) > 1:
            curves.append(curve_from_points(earlier, self.history[:-1]))
        curves.append(curve_from_points(now, [current]))
        if self._images:
            for codec in self.codecs:
                curves.append(curve_from_points(codec, [self._classical_point(codec, p["bpp"]) for p in pts]))
        perceptual = "lpips" if "lpips" in current else "ms-ssim-rgb"
        self.drawn = [c.name for c in curves]
        styles = {earlier: {"linestyle": "none", "alpha": 0.35, "color": "gray"},
                  now: {"marker": "*", "markersize": 12, "linestyle": "none", "color": "black"}}
        return rd_figure(curves, ["psnr-rgb", perceptual], title=f"{name}: rate–distortion–perception", styles=styles)

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        try:
            self._log_point(trainer, pl_module)
        except Exception as e:  # a figure is not worth a training run: warn and go on
            warnings.warn(f"RDPFigureCallback: no RDP figure at step {trainer.global_step}: "
                          f"{type(e).__name__}: {e}", RuntimeWarning, stacklevel=1)

    def _log_point(self, trainer, pl_module) -> None:
        if self._images:
            self._collecting = False
        point = self._point(trainer, pl_module)
        if point is None:
            return
        self.history.append(point)
        run_dir = Path(trainer.default_root_dir)
        ident = self._identity(pl_module)
        rate_point = {k: v for k, v in point.items() if k != "step"}
        write_curve(run_dir / RDP_FILE, curve_from_points(run_dir.name, [rate_point], "latest validation of this run",
                                                          {**ident, "step": int(point["step"])}))
        ladder = [{k: c.results[k][-1] for k in c.results} for c in self._sibling_curves(run_dir, ident)]
        exp = getattr(trainer.logger, "experiment", None)
        if exp is None or not hasattr(exp, "add_figure"):
            return
        fig = self._figure(point, ladder, run_dir.name)
        exp.add_figure(self.tag, fig, global_step=trainer.global_step, close=True)

    def on_train_end(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero or trainer.logger is None or not self.history:
            return
        last = self.history[-1]
        names = {"bpp": "hp/bpp", "psnr-rgb": "hp/psnr", "lpips": "hp/lpips", "ms-ssim-rgb": "hp/ms_ssim"}
        metrics = {names[k]: v for k, v in last.items() if k in names}
        params = dict(getattr(pl_module, "hparams", {}).get("cfg", {}) or {})
        trainer.logger.log_hyperparams(params, metrics=metrics)
