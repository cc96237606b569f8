"""What the hybrid buys: the `small` model against its own LIC stream, its VQ stream and classical codecs.

    python benchmarks/small_study.py --data KODAK_DIR [--runs runs/small] [--model small] [-o results/small_study]

On every image of ``--data`` (the 24 Kodak images for the published table) it measures,
with real bytes (bpp = file bytes × 8 / pixels) and the project's one metrics module
(PSNR, MS-SSIM, LPIPS-alex on every image; DISTS on the first ``--dists-images``):

* ``lic``: the LIC stream alone, one point per trained λ (``RUNS/lic_lo``, ``lic``, ``lic_hi``, or
  the shipped copies ``small-lic-lo``, ``small-lic``, ``small-lic-hi``);
* ``hdc-fidelity`` / ``hdc-perceptual``: the hybrid's x̂_lic and x̃ at each mask level of ``--masks``;
* ``vq``: the VQ stream alone (the full index map, entropy-coded, through the VQ decoder);
* ``jpeg`` / ``webp`` / ``avif``: each image matched to the hybrid's own bpp at each level;
* T's masked index accuracy (unsent positions), and two decode-time knock-outs of the trained
  hybrid: T with its DRV v_P zeroed, and x̃ without the VQ correction;
* ``--ablation NAME=CKPT``: retrained ablations (e.g. no DRV at all, or ``latent``: the paper's
  latent-only perceptual path) at the same mask levels;
* ``crops.png``: a centre crop of each of ``--crops`` (kodim01, kodim05, kodim23) by every codec
  side by side, at the model's own mask policy and the classical codecs matched to it.

It prints one table, writes ``study.json``, a CompressAI-style JSON per curve and
``rd.png`` (bpp vs PSNR and vs LPIPS), and BD-rates of the hybrid against the LIC alone and
against AVIF on PSNR and on LPIPS.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hdc_lightning.codec.api import load_codec
from hdc_lightning.codec.container import bits_per_pixel
from hdc_lightning.codec.imageio import read_image
from hdc_lightning.data.images import list_images
from hdc_lightning.errors import HDCError
from hdc_lightning.evaluation import bd, classical
from hdc_lightning.evaluation.metrics import MetricSuite
from hdc_lightning.evaluation.plot import rd_figure, save_figure
from hdc_lightning.evaluation.results import aggregate, curve_from_points, write_curve, write_json
from hdc_lightning.models.hybrid import TOKEN
from hdc_lightning.models.lic import pad_image

LIC_RUNS = ("lic_lo", "lic", "lic_hi")
SHIPPED_LIC = {"lic_lo": "small-lic-lo", "lic": "small-lic", "lic_hi": "small-lic-hi"}  # fp16 copies of the runs
MASKS = ("none", "1/9", "1/4", "auto", "full")
ABLATION_MASKS = ("1/4", "auto")
CLASSICAL = ("jpeg", "webp", "avif")
COLUMNS = ("bpp", "psnr-rgb", "ms-ssim-rgb", "lpips")
TABLE = (*COLUMNS, "x_dists_subset")
CROP_CURVES = ("hdc-perceptual", "hdc-fidelity", "lic", "vq", "jpeg", "webp", "avif")
CROP = 192


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="folder of evaluation images (Kodak for the published table)")
    p.add_argument(
        "--runs",
        default=None,
        help="run folder of experiments/pipeline/small.yaml for the LIC ladder "
        "(default: the shipped fp16 copies small-lic-lo, small-lic, small-lic-hi)",
    )
    p.add_argument("--model", default="small", help="hybrid: a pretrained name or a checkpoint path")
    p.add_argument("-o", "--out", default="results/small_study", help="output folder")
    p.add_argument("--limit", type=int, default=None, help="first N images only")
    p.add_argument("--dists-images", type=int, default=8, help="DISTS on the first N images only (it is slow on CPU)")
    p.add_argument(
        "--masks",
        default=",".join(MASKS),
        help="comma-separated mask levels of the hybrid (and of the classical codecs matched to it)",
    )
    p.add_argument(
        "--crops", nargs="*", default=["kodim01.png", "kodim05.png", "kodim23.png"], help="images of crops.png"
    )
    p.add_argument(
        "--ablation",
        action="append",
        default=[],
        metavar="NAME=CKPT",
        help="a retrained ablation of the hybrid (e.g. no_drv=runs/small-ablation/no_drv-fusion/"
        "checkpoints/last.ckpt), measured at the mask levels of ABLATION_MASKS",
    )
    p.add_argument(
        "--only-ablation",
        action="store_true",
        help="measure only the hybrid and each --ablation at the mask levels of ABLATION_MASKS "
        "(no LIC ladder, VQ stream or classical codecs)",
    )
    return p.parse_args(argv)


def parse_masks(text: str) -> tuple[str, ...]:
    masks = tuple(m.strip() for m in text.split(",") if m.strip())
    bad = [m for m in masks if m not in MASKS]
    if not masks or bad:
        sys.exit(f"small_study: error: --masks {text!r}: give levels among {', '.join(MASKS)}")
    return masks


def stage_ckpt(runs: Path | None, stage: str) -> str:
    """A stage's checkpoint in either pipeline layout, or the shipped copy when no --runs is given."""
    if runs is None:
        return SHIPPED_LIC[stage]
    path = runs / stage / "checkpoints" / "last.ckpt"
    if not path.is_file():
        sys.exit(f"small_study: error: {path} not found; train it with `hdc pipeline experiments/pipeline/small.yaml`")
    return str(path)


class Study:
    def __init__(self, images: list[tuple[str, torch.Tensor]], dists_images: int, crops=()):
        self.images = images
        self.crops = [n for n in crops if n in {name for name, _ in images}]
        self.kept: dict[tuple[str, int, str], tuple[torch.Tensor, dict]] = {}  # (curve, point, image) → (rec, row)
        self.metrics = MetricSuite(lpips=True, dists=False)
        # DISTS runs VGG16 on the whole frame (~5-10 s per Kodak image on one CPU core): it is
        # measured on the first `dists_images` images and reported as its own column.
        self.dists = MetricSuite(lpips=False, dists=True, ms_ssim=False)
        self.dists_names = {name for name, _ in images[:dists_images]}
        self.records: dict[str, list[list[dict]]] = {}  # curve → points → per-image records
        self.extra: dict[str, float] = {}

    def add(self, curve: str, point: int, name: str, ref: torch.Tensor, rec: torch.Tensor, nbytes: int, **more):
        pts = self.records.setdefault(curve, [])
        while len(pts) <= point:
            pts.append([])
        h, w = ref.shape[-2:]
        row = {
            "name": name,
            "bytes": nbytes,
            "bpp": bits_per_pixel(nbytes, h * w),
            **more,
            **self.metrics(ref, rec.clamp(0, 1)),
        }
        if name in self.dists_names:
            row["x_dists_subset"] = self.dists(ref, rec.clamp(0, 1)).get("dists", float("nan"))
        pts[point].append(row)
        if name in self.crops:
            self.kept[(curve, point, name)] = (rec.clamp(0, 1).cpu(), row)

    def curve(self, name: str):
        points = []
        for recs in self.records[name]:
            point = aggregate(
                recs, keys=(*COLUMNS, *{k for r in recs for k in r if k.startswith("x_") and k != "x_dists_subset"})
            )
            subset = [r["x_dists_subset"] for r in recs if "x_dists_subset" in r]
            if subset:
                point["x_dists_subset"] = sum(subset) / len(subset)
            points.append(point)
        return curve_from_points(name, points)


def index_accuracy(study: Study, masks=MASKS) -> dict:
    """T's accuracy on the unsent positions per perceptual curve and mask level (``full`` sends all)."""
    out = {}
    for curve, points in study.records.items():
        if curve.endswith("-perceptual"):
            out[curve] = {
                mask: {k: sum(r[k] for r in recs) / len(recs) for k in recs[0] if k.startswith("x_index_acc")}
                for mask, recs in zip(masks if curve == "hdc-perceptual" else ABLATION_MASKS, points)
                if mask != "full"
            }
    return out


def run_lic(study: Study, runs: Path | None) -> None:
    for p, stage in enumerate(LIC_RUNS):
        codec = load_codec(stage_ckpt(runs, stage))
        for name, x in study.images:
            data = codec.encode(x)
            study.add("lic", p, name, x, codec.decode(data).image, len(data))


@torch.no_grad()
def run_hybrid(study: Study, model_ref: str, masks=MASKS, prefix: str = "hdc") -> list[list[float]]:
    """Both outputs, the knock-outs and T's accuracy at each mask level; returns per-image bpp per level."""
    rates = []
    for p, mask in enumerate(masks):
        codec = load_codec(model_ref, mask=mask)
        m = codec.model
        level = []
        for name, x in study.images:
            data = codec.encode(x)
            _, out = codec.decode_full(data, output="both")
            h, w = x.shape[-2:]
            level.append(bits_per_pixel(len(data), h * w))
            truth = m.vq.encode_indices(pad_image(x[None], TOKEN))
            unsent = ~out.sent.expand_as(truth)
            acc = float((out.d_hat == truth)[unsent].float().mean()) if unsent.any() else float("nan")
            # Knock-outs of the trained model (decode side only).
            more = {"x_index_acc": acc}
            if out.drvs.v_P is not None:
                no_p = m.predictor.decode(
                    out.d_hat,
                    out.sent[None],
                    pad_image(out.x_hat_lic, TOKEN),
                    torch.zeros_like(out.drvs.v_P),
                    codec.steps,
                )
                more["x_index_acc_vp_zeroed"] = (
                    float((no_p == truth)[unsent].float().mean()) if unsent.any() else float("nan")
                )
            study.add(f"{prefix}-perceptual", p, name, x, out.x_tilde[0], len(data), **more)
            study.add(f"{prefix}-fidelity", p, name, x, out.x_hat_lic[0], len(data))
            if prefix == "hdc" and m.correction is not None:
                no_corr = m.vq.decode(m.vq.embed(out.d_hat))[..., :h, :w].clamp(0, 1)[0]
                study.add("hdc-perceptual-no-correction", p, name, x, no_corr, len(data))
        rates.append(level)
    return rates


@torch.no_grad()
def run_vq(study: Study, m) -> None:
    coder = m.vq.index_coder()
    for name, x in study.images:
        xp = pad_image(x[None], TOKEN)
        idx = m.vq.encode_indices(xp)
        data = coder.encode_indices(idx[0].cpu(), torch.ones(idx.shape[1:], dtype=torch.bool))
        h, w = x.shape[-2:]
        study.add("vq", 0, name, x, m.vq.decode_indices(idx)[0, :, :h, :w], len(data))


def run_classical(study: Study, rates: list[list[float]]) -> None:
    matcher = classical.RateMatcher()
    for codec in CLASSICAL:
        for p, level in enumerate(rates):
            for (name, x), target in zip(study.images, level):
                enc = matcher.match(codec, x, target, key=name)
                study.add(codec, p, name, x, classical.decode(enc.data), len(enc.data), x_target_bpp=target)


def show_crop(ax, img: torch.Tensor, title: str) -> None:
    h, w = img.shape[-2:]
    top, left = max(0, (h - CROP) // 2), max(0, (w - CROP) // 2)
    ax.imshow(img[:, top : top + CROP, left : left + CROP].permute(1, 2, 0).numpy())
    ax.set_title(title, fontsize=7)
    ax.axis("off")


def crops_figure(study: Study, masks, crop_mask: str) -> Figure | None:
    """Rows: the ``--crops`` images; columns: the original, then every codec of CROP_CURVES at
    ``crop_mask`` (the LIC alone at its middle λ, the VQ stream at its only point)."""
    if not study.crops or crop_mask not in masks:
        return None
    level = list(masks).index(crop_mask)
    point = {"lic": 1, "vq": 0}
    cols = [c for c in CROP_CURVES if any((c, point.get(c, level), n) in study.kept for n in study.crops)]
    originals = dict(study.images)
    fig = Figure(figsize=(2.2 * (len(cols) + 1), 2.5 * len(study.crops)))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(study.crops), len(cols) + 1, squeeze=False)
    for r, name in enumerate(study.crops):
        x = originals[name]
        show_crop(axes[r][0], x, f"{name}\noriginal")
        for c, curve in enumerate(cols, start=1):
            kept = study.kept.get((curve, point.get(curve, level), name))
            if kept is None:
                axes[r][c].axis("off")
                continue
            rec, row = kept
            show_crop(
                axes[r][c], rec, f"{curve}\n{row['bpp']:.3f} bpp  {row['psnr-rgb']:.1f} dB\nLPIPS {row['lpips']:.3f}"
            )
    fig.tight_layout()
    return fig


def _distinct(curve, metric: str) -> tuple[list[float], list[float]]:
    """Points with distinct rates (a classical codec at its lowest quality repeats one point)."""
    seen, rates, values = set(), [], []
    for r, v in zip(curve.results["bpp"], curve.results[metric]):
        if round(r, 6) not in seen:
            seen.add(round(r, 6))
            rates.append(r)
            values.append(v)
    return rates, values


def bd_rows(curves: dict) -> dict:
    out = {}
    test = curves["hdc-perceptual"]
    for anchor in ("lic", "avif"):
        a = curves[anchor]
        for metric, higher in (("psnr-rgb", True), ("lpips", False)):
            key = f"hdc-perceptual vs {anchor}, {metric}"
            try:
                out[key] = bd.bd_rate(
                    *_distinct(a, metric),
                    *_distinct(test, metric),
                    higher_is_better=higher,
                    names=(anchor, "hdc-perceptual"),
                )
            except Exception as e:  # curves that do not overlap in quality have no BD-rate
                out[key] = f"n/a ({(str(e).splitlines() or ['error'])[0]})"
    return out


def table(curves: dict) -> str:
    lines = [f"{'curve':34s} {'point':>5s} " + " ".join(f"{c.replace('x_dists_subset', 'dists*'):>11s}" for c in TABLE)]
    for name, c in curves.items():
        for i in range(len(c)):
            vals = [c.results[k][i] if c.has(k) else float("nan") for k in TABLE]
            lines.append(f"{name:34s} {i:5d} " + " ".join(f"{v:11.4f}" for v in vals))
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    files = list_images(args.data)[: args.limit]
    if not files:
        sys.exit(f"small_study: error: {args.data}: no images")
    images = [(f.name, read_image(f)) for f in files]
    study, out, t0 = Study(images, args.dists_images, args.crops), Path(args.out), time.time()
    out.mkdir(parents=True, exist_ok=True)
    masks = ABLATION_MASKS if args.only_ablation else parse_masks(args.masks)
    if not args.only_ablation:
        run_lic(study, Path(args.runs) if args.runs else None)
    rates = run_hybrid(study, args.model, masks)
    policy = load_codec(args.model)  # the model at its own mask policy: the VQ stream and the crops' level
    if not args.only_ablation:
        run_vq(study, policy.model)
    for item in args.ablation:
        name, _, ckpt = item.partition("=")
        run_hybrid(study, ckpt, ABLATION_MASKS, prefix=f"ablation-{name}")
    if not args.only_ablation:
        run_classical(study, rates)
    curves = {name: study.curve(name) for name in study.records}
    for name, c in curves.items():
        write_curve(out / f"{name}.json", c)
    summary = {
        "images": len(images),
        "seconds": round(time.time() - t0, 1),
        "masks": list(masks),
        "ablation_masks": list(ABLATION_MASKS),
        "ablations": list(args.ablation),
        "curves": {n: c.to_json() for n, c in curves.items()},
        "index_accuracy": index_accuracy(study, masks),
        "images_at_most_0.05_bpp_per_mask": dict(zip(masks, [sum(r <= 0.05 for r in level) for level in rates])),
        "dists_images": sorted(study.dists_names),
        "metrics_unavailable": {**study.metrics.unavailable, **study.dists.unavailable},
    }
    if not args.only_ablation:
        # Images each classical codec coded at ≤ 0.05 bpp when asked for the hybrid's lowest rate.
        summary.update(
            {
                "lic_runs": list(LIC_RUNS),
                "bd_rate_percent": bd_rows(curves),
                "classical_images_at_most_0.05_bpp": {
                    c: sum(r["bpp"] <= 0.05 for r in study.records[c][0]) for c in CLASSICAL
                },
            }
        )
    write_json(out / "study.json", summary)
    fig = rd_figure(list(curves.values()), metrics=["psnr-rgb", "lpips"])
    save_figure(fig, out / "rd.png")
    crops = crops_figure(study, masks, policy.mask)
    if crops is not None:
        save_figure(crops, out / "crops.png")
    print(table(curves))
    print(
        json.dumps(
            {
                k: summary[k]
                for k in (
                    "bd_rate_percent",
                    "index_accuracy",
                    "images_at_most_0.05_bpp_per_mask",
                    "classical_images_at_most_0.05_bpp",
                )
                if k in summary
            },
            indent=1,
        )
    )
    print(f"dists*: mean over the first {len(study.dists_names)} images only")
    print(f"wrote {out}/study.json, {out}/rd.png and one JSON per curve ({summary['seconds']} s)")
    return 0


if __name__ == "__main__":
    try:  # a bad checkpoint, folder or image: one line, no traceback
        sys.exit(main())
    except HDCError as e:
        sys.exit(f"small_study: error: {e}")
