"""RDPFigureCallback: an RD/RP figure (``val/rdp``) in TensorBoard at every validation.

It reads what every phase logs under the validation contract
(:mod:`hdc_lightning.phases.base`): ``val/bpp`` and the quality of the main output, and
for the hybrid phases the fidelity output x̂_lic (``val/*_fidelity``) at the same rate.
At each validation end (rank 0) it writes ``<run_dir>/rdp.json`` (one rate point,
CompressAI schema, the per-image rates in ``meta``), gathers the same file from sibling
run directories of a ladder (same phase and model), encodes the first validation
images with JPEG/WebP/AVIF, each image at the rate the codec spent on it (quality
search, cached), measures them with the phase's own metric suite, and draws bpp vs
PSNR and bpp vs LPIPS (or DISTS; MS-SSIM when neither is available). At the end of
training it logs the hyper-parameters with the final metrics (TensorBoard's HPARAMS tab).

Usage: ``fit(cfg, extra_callbacks=[RDPFigureCallback()])`` (``run.rdp_figure`` adds one).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch

from hdc_lightning.evaluation import classical
from hdc_lightning.evaluation.results import Curve, ResultsError, aggregate, curve_from_points, read_curve, write_curve
from hdc_lightning.phases.base import FIDELITY_SUFFIX, VAL_METRICS

RDP_FILE = "rdp.json"
OUTPUTS = {"": "perceptual x̃", FIDELITY_SUFFIX: "fidelity x̂_lic"}  # suffix → label of a hybrid output


def _point(metrics: Mapping[str, Any], suffix: str = "") -> dict[str, float] | None:
    """Results keys (``bpp``, ``psnr-rgb``, …) of one output from the logged ``val/`` metrics."""
    point = {}
    for key, name in {"bpp": "bpp", **VAL_METRICS}.items():
        value = metrics.get(f"val/{name}{suffix if key != 'bpp' else ''}")
        if value is not None and math.isfinite(float(value)):
            point[key] = float(value)
    return point if point.get("bpp", 0) > 0 and "psnr-rgb" in point else None


class RDPFigureCallback(L.Callback):
    """Logs ``tag`` (a matplotlib figure) to TensorBoard after each validation.

    Args:
        codecs: classical codecs to draw (those this Pillow cannot write are dropped).
        max_images: validation images kept (first ones seen) for the classical codecs.
        siblings: also draw the rate points of sibling run directories (a ladder).
        perception: metric of the second panel, ``lpips`` or ``dists``.
    """

    def __init__(
        self,
        codecs: Sequence[str] = ("jpeg", "webp", "avif"),
        max_images: int = 4,
        siblings: bool = True,
        perception: str = "lpips",
        tag: str = "val/rdp",
    ):
        if perception not in ("lpips", "dists"):
            raise ValueError(f"perception must be lpips or dists, got {perception!r}")
        self.codecs = [c for c in codecs if c in classical.supported()]
        self.max_images, self.siblings, self.perception, self.tag = max_images, siblings, perception, tag
        self.history: list[dict[str, float]] = []
        self._images: dict[str, torch.Tensor] = {}  # name → uint8 [3,H,W], the first images seen
        self._rates: dict[str, float] = {}  # name → bpp the learned codec spent on it at this validation
        self._matcher = classical.RateMatcher()
        self._classical_cache: dict[tuple, dict[str, float]] = {}
        self._suite = None
        self.drawn: list[str] = []  # names of the curves in the last figure (for inspection)

    # ---- state survives resume --------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"history": list(self.history)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))

    # ---- the validation images and the rate spent on each ----------------------------------
    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero or not isinstance(outputs, Mapping):
            return
        for i, (name, bpp) in enumerate(zip(outputs.get("names", ()), outputs.get("bpp", ()))):
            if name not in self._images and len(self._images) < self.max_images:
                h, w = (int(v) for v in batch.sizes[i])
                x = batch.images[i, :, :h, :w].detach().float().clamp(0, 1)
                self._images[name] = (x * 255).round().to(torch.uint8).cpu()
            if name in self._images:
                self._rates[name] = float(bpp)

    # ---- classical codecs, each image at its own rate ------------------------------------------
    def _metric_suite(self, pl_module):
        if self._suite is None:
            if hasattr(pl_module, "val_suite"):
                self._suite = pl_module.val_suite()  # the very metrics the phase logged
            else:
                from hdc_lightning.evaluation.metrics import MetricSuite

                self._suite = MetricSuite(lpips=True, dists=self.perception == "dists")
        return self._suite

    def _classical_point(self, pl_module, codec: str, rates: Mapping[str, float]) -> dict[str, float]:
        names = [n for n in self._images if n in rates]
        key = (codec, tuple((n, round(rates[n], 6)) for n in names))
        if key not in self._classical_cache:
            imgs = [(n, self._images[n].float() / 255) for n in names]
            recs = classical.evaluate_at_rates(
                codec, imgs, [rates[n] for n in names], self._metric_suite(pl_module), self._matcher
            )
            self._classical_cache[key] = aggregate(recs)
        return self._classical_cache[key]

    # ---- one rate point (two for the hybrid codec) per validation ------------------------------
    @staticmethod
    def _identity(pl_module) -> dict[str, Any]:
        cfg = getattr(pl_module, "cfg", {}) or {}
        model = cfg.get("model") or {}
        phase = (cfg.get("phase") or {}).get("name")
        return {"phase": phase, "model": model.get("name"), "preset": model.get("preset")}

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

    def _figure(self, pl_module, points: dict[str, dict], ladder: list[Curve], name: str):
        from hdc_lightning.evaluation.plot import rd_figure

        main, step = points[""], int(points[""]["step"])
        earlier = "this run, earlier validations"
        curves, styles = [], {earlier: {"linestyle": "none", "alpha": 0.35, "color": "gray"}}
        if ladder:
            curves.append(curve_from_points("ladder", [_last(c) for c in ladder] + [main]))
        if len(self.history) > 1:
            curves.append(curve_from_points(earlier, self.history[:-1]))
        for suffix, point in points.items():
            label = f"{name} (step {step})" + (f", {OUTPUTS[suffix]}" if len(points) > 1 else "")
            curves.append(curve_from_points(label, [point]))
            styles[label] = {"marker": "*" if not suffix else "P", "markersize": 12, "linestyle": "none"}
        if self._rates:
            targets = [self._rates] + [
                c.meta.get("per_image_bpp") or {n: _last(c)["bpp"] for n in self._images} for c in ladder
            ]
            for codec in self.codecs:
                curves.append(curve_from_points(codec, [self._classical_point(pl_module, codec, t) for t in targets]))
        perceptual = next((k for k in (self.perception, "lpips", "ms-ssim-rgb") if k in main), "ms-ssim-rgb")
        self.drawn = [c.name for c in curves]
        title = f"{name}: rate–distortion–perception"
        return rd_figure(curves, ["psnr-rgb", perceptual], title=title, styles=styles)

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        try:
            self._log_point(trainer, pl_module)
        except Exception as e:  # a figure is not worth a training run: warn and go on
            warnings.warn(
                f"RDPFigureCallback: no RDP figure at step {trainer.global_step}: {type(e).__name__}: {e}",
                RuntimeWarning,
                stacklevel=1,
            )

    def _log_point(self, trainer, pl_module) -> None:
        metrics = dict(trainer.callback_metrics)
        points = {s: p for s in OUTPUTS if (p := _point(metrics, s)) is not None}
        if "" not in points:
            return
        for p in points.values():
            p["step"] = float(trainer.global_step)
        self.history.append(points[""])
        run_dir = Path(trainer.default_root_dir)
        ident = self._identity(pl_module)
        meta = {**ident, "step": trainer.global_step, "per_image_bpp": dict(self._rates)}
        if FIDELITY_SUFFIX in points:
            meta["fidelity"] = {k: v for k, v in points[FIDELITY_SUFFIX].items() if k != "step"}
        rate_point = {k: v for k, v in points[""].items() if k != "step"}
        curve = curve_from_points(run_dir.name, [rate_point], "latest validation of this run", meta)
        write_curve(run_dir / RDP_FILE, curve)
        exp = getattr(trainer.logger, "experiment", None)
        if exp is None or not hasattr(exp, "add_figure"):
            return
        fig = self._figure(pl_module, points, self._sibling_curves(run_dir, ident), run_dir.name)
        exp.add_figure(self.tag, fig, global_step=trainer.global_step, close=True)

    def on_train_end(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero or trainer.logger is None or not self.history:
            return
        names = {"bpp": "bpp", **VAL_METRICS}
        metrics = {f"hp/{names[k]}": v for k, v in self.history[-1].items() if k in names}
        params = dict(getattr(pl_module, "hparams", {}).get("cfg", {}) or {})
        trainer.logger.log_hyperparams(params, metrics=metrics)


def _last(curve: Curve) -> dict[str, float]:
    return {k: v[-1] for k, v in curve.results.items()}
