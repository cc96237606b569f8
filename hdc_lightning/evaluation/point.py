"""One rate point of ``hdc eval``: every image coded for real, each baseline matched to its rate.

::

    image ─ code_image(codec) ─ bytes, x̂ ─ suite(image, x̂) ──────────── learned record
       └──── matcher.match(b, bpp of x̂) ─ classical.decode ─ suite ─── record of baseline b
    (x̂ and every baseline's decode also feed the patch FID/KID accumulators of their curve)
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from hdc_lightning.codec.container import bits_per_pixel
from hdc_lightning.errors import DataError, HDCError, first_line
from hdc_lightning.evaluation import classical
from hdc_lightning.evaluation.fid import KID_VGG16, PatchFID, inception_extractor, vgg16_extractor
from hdc_lightning.evaluation.metrics import MetricSuite, MetricUnavailable, note_once
from hdc_lightning.evaluation.results import aggregate
from hdc_lightning.evaluation.tiling import Codec, Coded, code_image

LEARNED = "learned"  # the key of the learned codec's FID/KID accumulators (the others: baseline names)


@dataclass
class EvalOptions:
    tile: int | None = None  # the codec's tile option (codec.tiles.plan): None = tiles only over its limit
    baselines: Sequence[str] = ()
    lpips: bool = True
    dists: bool = True
    ms_ssim: bool = True
    fid: bool = True
    kid_vgg16: bool = True  # KID on VGG16-trunk features: offline, not the published KID (fid.py)
    limit: int | None = None
    progress: bool = True
    device: str = "cpu"  # where LPIPS/DISTS/FID networks run
    codec_device: str = "cpu"  # where the codec's transforms run (its entropy coding stays on the CPU)
    target_bpp: Sequence[float] = ()  # one point per rate, rate control over all checkpoints
    realism: Sequence[float] = ()  # one point per decode realism of the single checkpoint
    realism_mode: str | None = None  # learned | blend (None: the model's default, HybridCodec.realism_mode)
    mask: str | None = None  # hybrid checkpoints: which VQ indices are sent (None: each model's mask policy)


@dataclass
class PointResult:
    label: str
    checkpoint: str
    records: list[dict[str, Any]] = field(default_factory=list)
    set_metrics: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, float]:
        return {**aggregate(self.records), **self.set_metrics}


class EvalImages:
    """The folder's images, read one at a time; unreadable ones are reported once and skipped."""

    def __init__(self, folder: Path, limit: int | None):
        from hdc_lightning.data.images import list_images

        self.root = folder
        self.files = list_images(folder)[:limit] if limit else list_images(folder)
        self.skipped: dict[str, str] = {}

    def __iter__(self):
        from hdc_lightning.data.images import CorruptImage, read_rgb, to_float

        for path in self.files:
            name = path.relative_to(self.root).as_posix()
            if name in self.skipped:
                continue
            try:
                image = to_float(read_rgb(path))
            except (OSError, CorruptImage, RuntimeError) as e:
                self.skip(name, first_line(e), "unreadable image")
                continue
            yield name, image

    def skip(self, name: str, reason: str, what: str = "image") -> None:
        self.skipped[name] = reason
        print(f"hdc eval: skipped {what} {name}: {reason}", file=sys.stderr)


# ---- the patch-distribution metrics (FID, KID) -----------------------------------------
def _fid_extractor(opts: EvalOptions, unavailable: dict[str, str]):
    """The Inception network shared by every FID/KID of the evaluation, or None (said once)."""
    try:
        return inception_extractor().to(opts.device)
    except MetricUnavailable as e:
        unavailable["fid"] = unavailable["kid"] = str(e)
        note_once("unavailable-fid", f"FID/KID unavailable, left out of the results: {e}")
        return None


def set_metric_nets(opts: EvalOptions, unavailable: dict[str, str], fid_net) -> list[tuple[str, dict]]:
    """(cache tag, PatchFID arguments) of every patch-distribution metric this evaluation computes."""
    nets = []
    if opts.fid:
        fid_net = fid_net if fid_net is not None else _fid_extractor(opts, unavailable)
        if fid_net is not None:
            nets.append(("inception", {"extractor": fid_net}))
    if opts.kid_vgg16:
        try:
            vgg = vgg16_extractor().to(opts.device)
        except HDCError as e:
            unavailable[KID_VGG16] = first_line(e)
            note_once("unavailable-kid-vgg16", f"{KID_VGG16} unavailable, left out of the results: {first_line(e)}")
        else:
            nets.append(("vgg16", {"extractor": vgg, "kid_name": KID_VGG16, "with_fid": False}))
    return nets


def _update(accumulators, name: str, image: torch.Tensor, decoded: torch.Tensor, ref_cache: dict) -> None:
    for tag, fid in accumulators:
        fid.update(image, decoded, key=f"{tag}:{name}", cache=ref_cache)


def _add_set_metrics(fids: dict, point: PointResult, base: dict[str, PointResult]) -> None:
    """FID/KID of each curve that got enough patches (fewer than 2: no distribution to compare)."""
    for key, accumulators in fids.items():
        for _, fid in accumulators:
            if fid.n_patches >= 2:
                (point if key == LEARNED else base[key]).set_metrics.update(fid.compute())


# ---- per-image records ----------------------------------------------------------------
def _learned_record(codec: Codec, name: str, image: torch.Tensor, coded: Coded, bpp: float, suite: MetricSuite) -> dict:
    _, h, w = image.shape
    rec = {
        "name": name,
        "height": h,
        "width": w,
        "bytes": coded.nbytes,
        "bpp": bpp,
        "tiles": coded.tiles,
        **suite(image, coded.image),
        "encoding_time": coded.encoding_time,
        "decoding_time": coded.decoding_time,
    }
    rec.update(getattr(codec, "record", dict)())  # what an operating-point codec chose for this image
    return rec


def _baseline_record(
    baseline: str, name: str, image: torch.Tensor, bpp: float, suite: MetricSuite, matcher: classical.RateMatcher
) -> tuple[dict, torch.Tensor]:
    """(record, decoded image) of ``baseline`` matched to ``bpp`` on this image."""
    _, h, w = image.shape
    enc = matcher.match(baseline, image, bpp, key=name)
    decoded = classical.decode(enc.data)
    rec = {
        "name": name,
        "height": h,
        "width": w,
        "bytes": len(enc.data),
        "bpp": enc.bpp,
        "target_bpp": bpp,
        "quality": enc.quality,
        **suite(image, decoded),
    }
    return rec, decoded


def _note_missed_rates(label: str, base: dict[str, PointResult]) -> None:
    for b, p in base.items():
        far = [r for r in p.records if abs(r["bpp"] / r["target_bpp"] - 1) > 0.2]
        if far:
            print(
                f"hdc eval: note: {b} misses the rate of {label} by more than 20 % on {len(far)} of "
                f"{len(p.records)} images (its quality range cannot reach that rate there)",
                file=sys.stderr,
            )


def _progress(images: EvalImages, label: str, opts: EvalOptions):
    from tqdm import tqdm

    return tqdm(
        images,
        total=len(images.files),
        desc=f"eval {label}",
        unit="img",
        disable=not opts.progress,
        file=sys.stderr,
        leave=True,
    )


def evaluate_point(
    codec: Codec,
    label: str,
    checkpoint: str,
    images: EvalImages,
    suite: MetricSuite,
    opts: EvalOptions,
    matcher: classical.RateMatcher,
    ref_cache: dict,
    set_nets: Sequence[tuple[str, dict]] = (),
) -> tuple[PointResult, dict[str, PointResult]]:
    """Code every image with ``codec``; match each baseline to its rate on the same image."""
    point = PointResult(label, checkpoint)
    base = {b: PointResult(label, checkpoint) for b in opts.baselines}
    fids = {  # per curve: (cache tag, accumulator) of each patch-distribution metric
        key: [(tag, PatchFID(device=opts.device, **kw)) for tag, kw in set_nets] for key in (LEARNED, *opts.baselines)
    }
    bar = _progress(images, label, opts)
    for name, image in bar:
        _, h, w = image.shape
        try:
            coded = code_image(codec, image)
        except (
            DataError
        ) as e:  # the image itself is refused (e.g. larger than the format): skip it like unreadable ones
            images.skip(name, first_line(e))
            continue
        bpp = bits_per_pixel(coded.nbytes, h * w)
        rec = _learned_record(codec, name, image, coded, bpp, suite)
        point.records.append(rec)
        _update(fids[LEARNED], name, image, coded.image, ref_cache)
        for b in opts.baselines:
            matched, decoded = _baseline_record(b, name, image, bpp, suite, matcher)
            base[b].records.append(matched)
            _update(fids[b], name, image, decoded, ref_cache)
        bar.set_postfix(bpp=f"{bpp:.4f}", psnr=f"{rec['psnr-rgb']:.2f}")
    _note_missed_rates(label, base)
    _add_set_metrics(fids, point, base)
    return point, base
