"""Rate–distortion (bpp vs PSNR) and rate–perception (bpp vs LPIPS) figures.

Built on matplotlib's object API with the Agg canvas — no pyplot state, no display, and
no change of the caller's backend — so it works on headless training nodes and inside
a Lightning callback.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hdc_lightning.errors import DataError
from hdc_lightning.evaluation.classical import CODECS
from hdc_lightning.evaluation.results import LOWER_IS_BETTER, Curve, ResultsError
from hdc_lightning.fileio import MARKER, output_file

LABELS = {
    "psnr-rgb": "PSNR (RGB) [dB] ↑",
    "ms-ssim-rgb": "MS-SSIM (RGB) ↑",
    "ms-ssim-db-rgb": "MS-SSIM (RGB) [dB] ↑",
    "lpips": "LPIPS ↓",
    "dists": "DISTS ↓",
    "fid": "FID (256-px patches) ↓",
    "kid": "KID (256-px patches) ↓",
    "kid-vgg16": "kid-vgg16 (offline, 256-px patches) ↓",
}
# Distances between the outputs' and the originals' distributions: the perception axis of the
# perception–distortion panel when a curve has one (LPIPS/DISTS keep their own panels).
REALISM_AXES = ("fid", "kid", "kid-vgg16")
METRICS = tuple(LABELS)

# Classical codecs, as ours and published results files name them ("VTM", "BPG 8b 444 x265
# ycbcr", "JPEG2000", ...): their curves are drawn dashed.
CLASSICAL = frozenset(
    {
        *CODECS,
        "jpeg",
        "jpeg2000",
        "jpegxl",
        "jxl",
        "webp",
        "avif",
        "av1",
        "bpg",
        "vtm",
        "vvc",
        "hm",
        "hevc",
        "x264",
        "x265",
        "heic",
        "heif",
    }
)
# File types a figure can be written as, with the metadata key that carries hdc's marker.
FIGURE_TYPES = {".png": "Software", ".pdf": "Creator", ".svg": "Creator"}
_MARKERS = "osD^vP*Xph<>"


def is_classical(name: str) -> bool:
    tokens = re.split(r"[^a-z0-9]+", name.lower())
    return tokens[0] in CLASSICAL and "ai" not in tokens  # JPEG AI is a learned codec


def curve_styles(n: int) -> list[dict[str, Any]]:
    """Colour and marker of curve ``k`` of ``n``: no two curves share a colour (tab10, then
    tab20, then evenly spaced hues), markers vary too for print in grey."""
    if n <= 10:
        colours = [f"C{k}" for k in range(n)]
    elif n <= 20:
        colours = [colormaps["tab20"](k) for k in range(n)]
    else:
        colours = [colormaps["turbo"](k / (n - 1)) for k in range(n)]
    return [{"color": colours[k], "marker": _MARKERS[k % len(_MARKERS)]} for k in range(n)]


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
    """One panel per metric (x = bpp); each curve a line with markers. A ``--realism`` curve
    (``meta["realism"]``) adds a perception–distortion panel (PSNR against a realism axis such
    as kid-vgg16 when the curve has one, else LPIPS; points labelled A).

    Classical codecs are drawn dashed; ``styles`` overrides matplotlib kwargs per curve name.
    """
    metrics = list(metrics or default_metrics(curves))
    if not metrics:
        raise ResultsError("no curve has a metric to plot (need psnr-rgb, ms-ssim-rgb or lpips)")
    pd_axes = pd_metrics(curves, metrics)
    panels = len(metrics) + (pd_axes is not None)
    fig = Figure(figsize=(5.2 * panels, 4.2), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    styles = styles or {}
    base = curve_styles(len(curves))
    for i, metric in enumerate(metrics):
        ax = fig.add_subplot(1, panels, i + 1)
        drawn = 0
        for k, curve in enumerate(curves):
            if not curve.has(metric):
                continue
            # Style by curve index, so a curve looks the same in every panel.
            ax.plot(curve.results["bpp"], curve.values(metric), label=curve.name, **_line(curve, base[k], styles))
            drawn += 1
        ax.set_xlabel("bits per pixel (bpp)")
        ax.set_ylabel(LABELS.get(metric, metric + (" ↓" if metric in LOWER_IS_BETTER else "")))
        ax.grid(True, alpha=0.3)
        if drawn:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, f"no curve has {metric}", ha="center", va="center", transform=ax.transAxes)
    if pd_axes is not None:
        _pd_panel(fig.add_subplot(1, panels, panels), curves, pd_axes, base, styles)
    if title:
        fig.suptitle(title)
    return fig


def _line(curve: Curve, base: Mapping[str, Any], styles: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Matplotlib kwargs of one curve, the same in every panel: its colour and marker, dashed
    for a classical codec, then the caller's ``styles`` for that name."""
    kw: dict[str, Any] = {"markersize": 4, "linewidth": 1.5, **base}
    if is_classical(curve.name):
        kw.update(linestyle="--", linewidth=1.0)
    return {**kw, **styles.get(curve.name, {})}


def realism_values(curve: Curve) -> list[float] | None:
    """The decode realism A of each point of a ``hdc eval --realism`` curve, else None."""
    values = curve.meta.get("realism")
    return list(values) if isinstance(values, list) and len(values) == len(curve) else None


def pd_metrics(curves: Sequence[Curve], metrics: Sequence[str]) -> tuple[str, str] | None:
    """(distortion, perception) axes of the perception–distortion panel, drawn when a curve
    varies the decode realism at one rate (on the bpp axes it is a vertical line)."""
    distortion = next((m for m in metrics if m in ("psnr-rgb", "ms-ssim-rgb", "ms-ssim-db-rgb")), None)
    swept = [c for c in curves if realism_values(c)]
    perception = next((m for m in REALISM_AXES if any(c.has(m) for c in swept)), None)
    perception = perception or next((m for m in metrics if m in LOWER_IS_BETTER), None)
    if distortion is None or perception is None:
        return None
    if not any(realism_values(c) and c.has(distortion) and c.has(perception) for c in curves):
        return None
    return distortion, perception


def _pd_panel(
    ax,
    curves: Sequence[Curve],
    axes: tuple[str, str],
    base: list[dict[str, Any]],
    styles: Mapping[str, Mapping[str, Any]],
) -> None:
    distortion, perception = axes
    for k, curve in enumerate(curves):
        realism = realism_values(curve)
        if not realism or not (curve.has(distortion) and curve.has(perception)):
            continue
        xs, ys = curve.values(distortion), curve.values(perception)
        ax.plot(
            xs,
            ys,
            label=f"{curve.name} ({sum(curve.results['bpp']) / len(curve):.3f} bpp)",
            **_line(curve, base[k], styles),
        )
        for a, x, y in zip(realism, xs, ys):
            ax.annotate(f"A={a:g}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xlabel(LABELS.get(distortion, distortion))
    ax.set_ylabel(LABELS.get(perception, perception + " ↓"))
    ax.set_title("perception–distortion (decode realism A)", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)


def figure_path(path: str | Path) -> Path:
    """The figure file ``path`` names; ResultsError unless its suffix is a type we write."""
    path = Path(path)
    if path.suffix.lower() not in FIGURE_TYPES:
        raise ResultsError(
            f"{path}: a figure is written as {', '.join(FIGURE_TYPES)}; give the file one of these suffixes"
        )
    return path


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` (PNG, PDF or SVG by suffix) carrying hdc's marker; one-line errors."""
    path = figure_path(path)
    suffix = path.suffix.lower()
    try:
        with output_file(path) as tmp:
            fig.savefig(tmp, format=suffix[1:], metadata={FIGURE_TYPES[suffix]: MARKER})
    except DataError as e:
        raise ResultsError(str(e)) from None
    return path


def plot_files(
    paths: Sequence[str | Path], out: str | Path, metrics: Sequence[str] | None = None, title: str | None = None
) -> Path:
    """Read results JSONs (folders expand to their JSONs) and write one figure."""
    from hdc_lightning.evaluation.results import expand_paths, read_curve

    out = figure_path(out)
    curves = [read_curve(p) for p in expand_paths(paths)]
    for m in metrics or ():
        if not any(c.has(m) for c in curves):
            raise ResultsError(f"none of the {len(curves)} results file(s) has '{m}'")
    return save_figure(rd_figure(curves, metrics, title), out)
