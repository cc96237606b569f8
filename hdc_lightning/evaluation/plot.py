"""Rate–distortion (bpp vs PSNR) and rate–perception (bpp vs LPIPS) figures.

Built on matplotlib's object API with the Agg canvas — no pyplot state, no display, and
no change of the caller's backend — so it works on headless training nodes and inside
a Lightning callback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hdc_lightning.evaluation.classical import CODECS
from hdc_lightning.evaluation.results import LOWER_IS_BETTER, Curve, ResultsError

LABELS = {
    "psnr-rgb": "PSNR (RGB) [dB] ↑",
    "ms-ssim-rgb": "MS-SSIM (RGB) ↑",
    "lpips": "LPIPS ↓",
    "dists": "DISTS ↓",
    "fid": "FID (256-px patches) ↓",
    "kid": "KID (256-px patches) ↓",
}
METRICS = tuple(LABELS)


def default_metrics(curves: Sequence[Curve]) -> list[str]:
    """PSNR plus the perceptual metric every figure should show: LPIPS, else MS-SSIM."""
    out = ["psnr-rgb"] if any(c.has("psnr-rgb") for c in curves) else []
    for perceptual in ("lpips", "ms-ssim-rgb"):
        if any(c.has(perceptual) for c in curves):
            out.append(perceptual)
            break
    return out


def rd_figure(
    curves: Sequence[Curve],
    metrics: Sequence[str] | None = None,
    title: str | None = None,
    styles: Mapping[str, Mapping[str, Any]] | None = None,
) -> Figure:
    """One panel per metric (x = bpp); each curve a line with markers.

    Classical codecs are drawn dashed; ``styles`` overrides matplotlib kwargs per curve name.
    """
    metrics = list(metrics or default_metrics(curves))
    if not metrics:
        raise ResultsError("no curve has a metric to plot (need psnr-rgb, ms-ssim-rgb or lpips)")
    fig = Figure(figsize=(5.2 * len(metrics), 4.2), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    styles = styles or {}
    for i, metric in enumerate(metrics):
        ax = fig.add_subplot(1, len(metrics), i + 1)
        drawn = 0
        for k, curve in enumerate(curves):
            if not curve.has(metric):
                continue
            # Colour by curve index, so a curve looks the same in every panel.
            kw: dict[str, Any] = {"marker": "o", "markersize": 4, "linewidth": 1.5, "color": f"C{k % 10}"}
            if curve.name in CODECS:
                kw.update(linestyle="--", marker="s", linewidth=1.0)
            kw.update(styles.get(curve.name, {}))
            ax.plot(curve.results["bpp"], curve.results[metric], label=curve.name, **kw)
            drawn += 1
        ax.set_xlabel("bits per pixel (bpp)")
        ax.set_ylabel(LABELS.get(metric, metric + (" ↓" if metric in LOWER_IS_BETTER else "")))
        ax.grid(True, alpha=0.3)
        if drawn:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, f"no curve has {metric}", ha="center", va="center", transform=ax.transAxes)
    if title:
        fig.suptitle(title)
    return fig


def save_figure(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def plot_files(paths: Sequence[str | Path], out: str | Path, metrics: Sequence[str] | None = None,
               title: str | None = None) -> Path:
    """Read results JSONs (folders expand to their JSONs) and write one figure."""
    from hdc_lightning.evaluation.results import expand_paths, read_curve

    curves = [read_curve(p) for p in expand_paths(paths)]
    for m in metrics or ():
        if not any(c.has(m) for c in curves):
            raise ResultsError(f"none of the {len(curves)} results file(s) has '{m}'")
    return save_figure(rd_figure(curves, metrics, title), out)
