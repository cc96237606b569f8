"""The evaluation loop behind ``hdc eval``: real files, per-image records, curves, BD.

For each checkpoint (one rate point of a ladder) every image of the folder is really
encoded to bytes and decoded (whole, or in tiles beyond a pixel budget); bpp is the
byte count × 8 / pixels. While an image is in memory, each classical baseline is
matched to the learned codec's rate on that image. Results go to::

    OUTDIR/<name>.json                   the learned curve (CompressAI schema)
    OUTDIR/<jpeg|webp|avif>.json         classical curves at matching rates
    OUTDIR/per_image/<curve>/<point>.json   per-image records of each rate point
    OUTDIR/bd.json                       BD-rate / BD-PSNR of every curve vs the anchor
    OUTDIR/rd.png                        RD and RP figure

One rate point (every image coded, each baseline matched to it) is :mod:`.point`.
"""

from __future__ import annotations

import resource
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from hdc_lightning.errors import ConfigError
from hdc_lightning.evaluation import classical
from hdc_lightning.evaluation.bd import bd_table, check_anchor
from hdc_lightning.evaluation.metrics import MetricSuite
from hdc_lightning.evaluation.point import EvalImages, EvalOptions, PointResult, evaluate_point, set_metric_nets
from hdc_lightning.evaluation.results import (
    Curve,
    curve_from_points,
    read_curve,
    write_curve,
    write_json,
    write_per_image,
)
from hdc_lightning.evaluation.tiling import Codec
from hdc_lightning.fileio import check_component
from hdc_lightning.rundir import resolve_checkpoints, run_name_of


@dataclass
class EvalSummary:
    curves: list[Curve]
    skipped: list[dict[str, str]]
    bd: dict[str, Any]
    files: list[Path]
    peak_rss_mib: float


def peak_rss_mib() -> float:
    """This process's peak resident memory so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**20 if sys.platform == "darwin" else 2**10)


# ---- inputs ---------------------------------------------------------------------------
def checkpoint_label(path: Path) -> str:
    """runs/NAME/checkpoints/last.ckpt → NAME; any other file → its stem."""
    return run_name_of(path) or path.stem


def _unique(labels: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label}-{seen[label]}")
    return out


def _load_codec(path: Path, device: str = "cpu", tile: int | None = None, mask: str | None = None) -> Codec:
    from hdc_lightning.codec.api import load_codec  # lazy: needs the model packages

    if mask is None:
        return load_codec(path, device=device, tile=tile)
    try:
        return load_codec(path, device=device, tile=tile, mask=mask)
    except TypeError:  # a codec without mask levels (a LIC-only checkpoint)
        raise ConfigError(f"{path}: --mask applies to hybrid (hdc) checkpoints; this one has no VQ stream") from None


# ---- BD anchor -----------------------------------------------------------------------
def resolve_anchor(anchor: str | None, name: str, baselines: Sequence[str]) -> Curve | str | None:
    """A results JSON is read now (fail before hours of coding); a name must be a curve we make."""
    if anchor is None:
        return None
    if anchor.endswith(".json") or Path(anchor).is_file():
        curve = read_curve(anchor)
        check_anchor(curve)
        return curve
    if anchor not in (name, *baselines):
        raise ConfigError(
            f"--anchor {anchor!r} is neither a results JSON nor a curve of this evaluation "
            f"(choose from {', '.join((name, *baselines))})"
        )
    return anchor


def _operating_points(ckpts: list[Path], labels: list[str], loader: Callable, opts: EvalOptions) -> list[tuple]:
    """(label, checkpoint, codec maker) per point: one per checkpoint; or one per --target-bpp
    rate, rate control over every checkpoint; or one per --realism value of one checkpoint.
    Codecs of a sweep are loaded once and shared by its points."""
    loaded: list = []

    def load_all() -> list:
        loaded[:] = loaded or [loader(c) for c in ckpts]
        return loaded

    if opts.target_bpp:
        from hdc_lightning.codec.rate_control import Point, RateControlled

        make = lambda r: RateControlled([Point(lb, c) for lb, c in zip(labels, load_all())], r)  # noqa: E731
        return [(f"R={r:g}", ",".join(map(str, ckpts)), lambda r=r: make(r)) for r in opts.target_bpp]
    if opts.realism:
        from hdc_lightning.codec.hybrid import WithRealism

        if len(ckpts) != 1:
            raise ConfigError(f"--realism draws the curve of one rate point; got {len(ckpts)} checkpoints")
        encoded: dict = {}  # every realism point decodes the same files
        return [
            (f"A={a:g}", str(ckpts[0]), lambda a=a: WithRealism(load_all()[0], a, encoded, opts.realism_mode))
            for a in opts.realism
        ]
    return [(label, str(ckpt), lambda ckpt=ckpt: loader(ckpt)) for ckpt, label in zip(ckpts, labels)]


# ---- the whole evaluation -------------------------------------------------------------
BD_NAME = "bd"  # OUTDIR/bd.json: the BD summary, so no curve may take that name


def check_curve_name(name: object) -> str:
    """``--name`` becomes OUTDIR/<name>.json: one plain file name, none of the files eval writes."""
    check_component(name, "--name")
    if name == BD_NAME or name in classical.CODECS:
        what = "the BD summary" if name == BD_NAME else "the classical baseline of that name"
        raise ConfigError(f"--name {name!r} is reserved for {what} ({name}.json); choose another name")
    return name


def _metric_suite(opts: EvalOptions) -> MetricSuite:
    suite = MetricSuite(lpips=opts.lpips, dists=opts.dists, device=opts.device, ms_ssim=opts.ms_ssim)
    for metric in ("lpips", "dists"):
        suite.available(metric)  # say now (once) what is unavailable, not in the middle of a progress bar
    return suite


def _evaluate_points(
    data: str | Path,
    ckpts: list[Path],
    loader: Callable[[Path], Codec],
    images: EvalImages,
    suite: MetricSuite,
    opts: EvalOptions,
    fid_net: torch.nn.Module | None,
) -> tuple[list[PointResult], dict[str, list[PointResult]]]:
    """Every operating point, one codec in memory at a time: (learned points, points per baseline)."""
    matcher, ref_cache = classical.RateMatcher(), {}  # both shared by the points: work done once per image
    set_nets = set_metric_nets(opts, suite.unavailable, fid_net)
    labels = _unique([checkpoint_label(c) for c in ckpts])
    learned: list[PointResult] = []
    base: dict[str, list[PointResult]] = {b: [] for b in opts.baselines}
    for label, ckpt, make_codec in _operating_points(ckpts, labels, loader, opts):
        codec = make_codec()
        point, matched = evaluate_point(codec, label, ckpt, images, suite, opts, matcher, ref_cache, set_nets)
        del codec
        if not point.records:
            raise ConfigError(f"{data}: none of the {len(images.files)} images could be read")
        learned.append(point)
        for b, p in matched.items():
            base[b].append(p)
    return learned, base


def _settings(data: str | Path, opts: EvalOptions, suite: MetricSuite, peak: float) -> dict[str, Any]:
    """What every results file records about how it was measured."""
    settings = {
        "data": str(data),
        "tile": opts.tile,
        **({"target_bpp": list(opts.target_bpp)} if opts.target_bpp else {}),
        **({"realism": list(opts.realism), "realism_mode": opts.realism_mode} if opts.realism else {}),
        **({"mask": opts.mask} if opts.mask else {}),
        "unavailable": dict(suite.unavailable),
        "peak_rss_mib": round(peak, 1),
    }
    if torch.cuda.is_available() and torch.cuda.max_memory_allocated() > 0:
        settings["peak_cuda_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return settings


def _write_curve(
    outdir: Path, name: str, points: list[PointResult], description: str, skipped: list, settings: dict
) -> tuple[Curve, list[Path]]:
    """One curve: the per-image file of each of its points, then its aggregate JSON."""
    files = [
        write_per_image(
            outdir / "per_image" / name / f"{p.label}.json",
            name,
            p.records,
            skipped,
            checkpoint=p.checkpoint,
            point=p.label,
            **settings,
            set_metrics=p.set_metrics,
        )
        for p in points
    ]
    curve = curve_from_points(
        name,
        [p.summary() for p in points],
        description,
        {"points": [p.label for p in points], "checkpoints": [p.checkpoint for p in points], **settings},
    )
    files.append(write_curve(outdir / f"{name}.json", curve))
    return curve, files


def run_eval(
    checkpoints: Sequence[str | Path],
    data: str | Path,
    outdir: str | Path,
    name: str = "hdc",
    anchor: str | None = None,
    opts: EvalOptions | None = None,
    loader: Callable[[Path], Codec] | None = None,
    description: str = "",
    fid_net: torch.nn.Module | None = None,
) -> EvalSummary:
    """Evaluate ``checkpoints`` (one rate point each) on the images of ``data``; see the module doc.

    ``loader`` turns a checkpoint path into a codec (default: ``load_codec``); ``fid_net``
    replaces the Inception feature extractor of FID/KID (uint8 patches → features).
    """
    opts = opts or EvalOptions()
    loader = loader or (lambda path: _load_codec(path, device=opts.codec_device, tile=opts.tile, mask=opts.mask))
    for b in opts.baselines:
        classical.get(b)  # unknown/unsupported codec: fail now
    check_curve_name(name)
    ckpts = resolve_checkpoints(checkpoints)
    anchor_ref = resolve_anchor(anchor, name, opts.baselines)
    images = EvalImages(Path(data), opts.limit)
    outdir = Path(outdir)
    suite = _metric_suite(opts)
    learned, base = _evaluate_points(data, ckpts, loader, images, suite, opts, fid_net)
    skipped = [{"name": k, "reason": v} for k, v in images.skipped.items()]
    peak = peak_rss_mib()
    settings = _settings(data, opts, suite, peak)
    curves, files = [], []
    for curve_name, points, desc in [
        (name, learned, description or f"hdc_lightning codec on {data}"),
        *[
            (b, base[b], f"{classical.CODECS[b].settings()}, rate-matched per image to '{name}'")
            for b in opts.baselines
        ],
    ]:
        curve, written = _write_curve(outdir, curve_name, points, desc, skipped, settings)
        curves.append(curve)
        files += written
    bd: dict[str, Any] = {}
    if anchor_ref is not None:
        anchor_curve = anchor_ref if isinstance(anchor_ref, Curve) else next(c for c in curves if c.name == anchor_ref)
        bd = bd_table(curves, anchor_curve)
        files.append(write_json(outdir / f"{BD_NAME}.json", bd))
    from hdc_lightning.evaluation.plot import rd_figure, save_figure

    shown = curves + ([anchor_ref] if isinstance(anchor_ref, Curve) else [])
    title = f"{Path(data).name}: {len(images.files) - len(skipped)} images"
    files.append(save_figure(rd_figure(shown, title=title), outdir / "rd.png"))
    return EvalSummary(curves, skipped, bd, files, peak)
