"""The VQ stream's border band and colour: today's `tiny` against the fixes, at equal steps.

    python benchmarks/vq_study.py --data KODAK_DIR --shards 'data/small/train-000000.tar' [--steps 600] [--every 150]

Trains each variant with the real ``hdc fit`` (real LPIPS, no discriminator, 128² crops,
batch 4, validation on the first ``--val-images`` images of ``--data`` every ``--every``
steps), then measures every final model on all of ``--data``:

* PSNR and LPIPS (the project's metrics module), the border-band ratio (mean error in a
  32-px frame / inside it, ``evaluation/diagnostics.py``), the frame effect (the 16-px frame
  of the picture cropped by 32 px, coded alone over coded inside the whole picture: ≈ 1 when
  the codec has no edge artefact), the chroma error (Cb/Cr of 16-px block means, ×255), and
  PSNR and chroma error of the same encoder and decoder *without* the codebook
  (``CosineQuantizer.unquantised``: what quantisation itself costs), and how much of each
  token's mean Y, Cb and Cr a linear map of its lookup vector explains (held-out R² over all
  tokens of ``--data``, ``diagnostics.probe_r2``: whether the latent carries colour at all);
* the learning curves (val PSNR and LPIPS against steps and CPU minutes) into ``curves.png``;
* ``kodim01`` (the first image) reconstructed by each variant into ``recon_<variant>_<steps>.png``,
  and a corner of it by all variants of the call side by side into ``recon_all_<steps>.png``.

``--run NAME=DIR`` adds a VQ trained elsewhere (the pipeline's ``vq`` stage, say) to the
table, measured the same way. Rerun with more ``--steps`` to extend a finished study: each run resumes from its checkpoint.
Measurements are kept in ``--out`` (``measure_<variant>_<steps>_<images>.json``), so adding a
variant to a finished study measures only the new one.

Variants: ``tiny`` (zero padding, K=128, LPIPS weight 1.0: the configuration of the report),
``tiny-replicate`` (only the padding changed), ``tiny-lpips0.2`` (only the LPIPS weight
changed), ``small`` (replicate padding, K=512, LPIPS 0.2: the shipped model's VQ recipe),
``small-lpips1.0`` (``small`` with the LPIPS weight of ``tiny``), ``small-ema`` (``small`` with
the codebook learnt as spherical k-means by moving averages), ``small-ema-chroma`` (that plus
an L1 on block-averaged chroma, ``phase.chroma_weight=2``) and ``small-f8`` (``small`` on an
f8 token grid).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from hdc_lightning.checkpoints import checkpoint_config, safe_load
from hdc_lightning.codec.api import _load_model
from hdc_lightning.codec.imageio import read_image, write_image
from hdc_lightning.colour import block_ycbcr
from hdc_lightning.data.images import list_images
from hdc_lightning.errors import HDCError
from hdc_lightning.evaluation.diagnostics import border_errors, chroma_error, frame_effect, probe_r2
from hdc_lightning.evaluation.metrics import MetricSuite, psnr_rgb
from hdc_lightning.evaluation.side_by_side import side_by_side
from hdc_lightning.models.lic import pad_image

VARIANTS = {
    "tiny": ["model.preset=tiny", "model.args.padding_mode=zeros", "phase.perceptual_weight=1.0"],
    "tiny-replicate": ["model.preset=tiny", "model.args.padding_mode=replicate", "phase.perceptual_weight=1.0"],
    "tiny-lpips0.2": ["model.preset=tiny", "model.args.padding_mode=zeros", "phase.perceptual_weight=0.2"],
    "small": ["model.preset=small", "phase.perceptual_weight=0.2"],
    "small-lpips1.0": ["model.preset=small", "phase.perceptual_weight=1.0"],  # small with tiny's loss weights
    # The codebook as spherical k-means (EMA) instead of an Adam-trained parameter.
    "small-ema": ["model.preset=small", "phase.perceptual_weight=0.2", "model.args.codebook_update=ema"],
    # small-ema plus an L1 on 4x4-averaged Cb/Cr (the colour cast priced in the loss).
    "small-ema-chroma": [
        "model.preset=small",
        "phase.perceptual_weight=0.2",
        "model.args.codebook_update=ema",
        "phase.chroma_weight=2.0",
    ],
    # An f8 token grid (4x the tokens, 0.14 bpp for the full index map before masking).
    "small-f8": ["model.preset=small", "phase.perceptual_weight=0.2", "model.args.ch_mult=[1,1,2,4]"],
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="evaluation images (Kodak for the published figures)")
    p.add_argument("--shards", required=True, help="training shards (data.train.shards)")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--every", type=int, default=150, help="validation interval (steps)")
    p.add_argument("--val-images", type=int, default=4)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument(
        "--run",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="also measure a finished VQ run folder (a `hdc fit` or pipeline stage run; not trained here)",
    )
    p.add_argument("--root", default="runs/vq-study")
    p.add_argument("-o", "--out", default="results/vq_study")
    return p.parse_args(argv)


def train(name: str, args, val_dir: Path) -> float:
    """Runs (or resumes) one variant; returns its wall time in seconds (0 when already done)."""
    run = Path(args.root) / name
    done = run / "done.json"
    if done.is_file() and json.loads(done.read_text()).get("global_step", 0) >= args.steps:
        return 0.0
    # A finished shorter run (say --steps 400, then 1200) resumes from its last checkpoint.
    cmd = [
        sys.executable,
        "-m",
        "hdc_lightning",
        "fit",
        "experiments/vq/tiny.yaml",
        *VARIANTS[name],
        f"run.root={args.root}",
        f"run.name={name}",
        f"trainer.max_steps={args.steps}",
        f"trainer.val_check_interval={args.every}",
        f"run.ckpt_every_n_steps={args.every}",
        f"data.train.shards={args.shards}",
        f"data.val.folder={val_dir}",
        f"data.val.max_images={args.val_images}",
        f"trainer.limit_val_batches={args.val_images}",
        "phase.disc_start=1000000000",
        "phase.image_every=0",
    ]
    cmd.append("run.resume=true" if (run / "checkpoints" / "last.ckpt").is_file() else "run.overwrite=true")
    t0 = time.time()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.time() - t0


def curves(run: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(run / "tb"), size_guidance={"scalars": 0})
    ea.Reload()
    return {
        tag: [(e.step, e.value) for e in ea.Scalars(tag)]
        for tag in ("val/psnr", "val/lpips", "val/bpp")  # val/bpp: the whole index map in real rANS bytes
        if tag in ea.Tags()["scalars"]
    }


@torch.no_grad()
def measure(run: Path, images, suite: MetricSuite) -> tuple[dict, torch.Tensor]:
    path = run / "checkpoints" / "last.ckpt"
    ckpt = safe_load(path)
    model = _load_model(ckpt, dict(checkpoint_config(ckpt, path)["model"]), str(path)).eval()

    def code(y: torch.Tensor) -> torch.Tensor:  # [B,3,H,W] of any size: padded to the token grid, cropped back
        return model(pad_image(y, model.downsample)).x_hat[..., : y.shape[-2], : y.shape[-1]]

    rows, first, lookups, means = [], None, [], []
    for _, x in images:
        rec = code(x[None])[0].clamp(0, 1)
        first = rec if first is None else first
        edge, inner = border_errors(x, rec, 32)
        # The same frame coded alone vs inside the whole picture: content held fixed.
        effect = frame_effect(code, x, margin=32, band=16, whole=rec)
        padded = pad_image(x[None], model.downsample)
        z_e = model.g_a(padded * 2 - 1)
        # The same encoder and decoder without the codebook: what quantisation costs.
        cont = model.decode(model.quantizer.unquantised(z_e))[0, :, : x.shape[-2], : x.shape[-1]].clamp(0, 1)
        # Does the latent carry colour? Lookup vectors against each token's mean Y/Cb/Cr.
        lookups.append(model.quantizer.lookup(z_e)[0][0].flatten(0, 1))
        means.append(block_ycbcr(padded, model.downsample)[0].flatten(1).t())
        rows.append(
            {
                **suite(x, rec),
                "psnr_unquantised": psnr_rgb(x, cont),
                "chroma_unquantised": chroma_error(x, cont),
                "border_mae": edge,
                "interior_mae": inner,
                "border_ratio": edge / inner,
                "frame_effect": effect,
                "chroma_error": chroma_error(x, rec),
            }
        )
    mean = {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]}
    r2 = probe_r2(torch.cat(lookups), torch.cat(means))
    mean.update({f"latent_r2_{c}": float(v) for c, v in zip(("y", "cb", "cr"), r2)})
    return mean, first


def figure(all_curves: dict, minutes: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for name, c in all_curves.items():
        for ax, tag in zip(axes, ("val/psnr", "val/lpips")):
            if tag in c:
                steps, values = zip(*c[tag])
                label = f"{name} ({minutes[name]:.0f} CPU-min)" if minutes[name] else name
                ax.plot(steps, values, marker="o", label=label)
    for ax, label in zip(axes, ("PSNR (dB)", "LPIPS-alex (lower is better)")):
        ax.set_xlabel("training steps (batch 4, 128² crops)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=110)


def main(argv=None) -> int:
    args = parse_args(argv)
    files = list_images(args.data)
    if not files:
        sys.exit(f"vq_study: error: {args.data}: no images")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    val_dir = out / "val"
    val_dir.mkdir(exist_ok=True)
    for f in files[: args.val_images]:
        link = val_dir / f.name
        if not link.exists():
            os.symlink(f.resolve(), link)
    images = [(f.name, read_image(f)) for f in files]
    suite = MetricSuite(lpips=True, dists=False)
    timing_file = out / "wall_seconds.json"
    wall = json.loads(timing_file.read_text()) if timing_file.is_file() else {}
    report, all_curves = {}, {}
    runs = {}
    for item in args.run:
        name, sep, folder = item.partition("=")
        if not sep or not (Path(folder) / "checkpoints" / "last.ckpt").is_file():
            sys.exit(f"vq_study: error: --run {item}: expected NAME=DIR with DIR/checkpoints/last.ckpt")
        runs[name] = Path(folder)
    for name in [v for v in args.variants.split(",") if v] + list(runs):
        if name in runs:
            run = runs[name]
        else:
            seconds = train(name, args, val_dir)
            wall[name] = wall.get(name, 0.0) + seconds  # an extended run adds its new segment
            timing_file.write_text(json.dumps(wall))
            run = Path(args.root) / name
        # A measurement is kept beside the figure: a later call with more variants reuses it
        # (same step count, same images).
        cache = out / f"measure_{name}_{args.steps}_{len(images)}.json"
        if cache.is_file():
            report[name] = json.loads(cache.read_text())
        else:
            report[name], rec = measure(run, images, suite)
            cache.write_text(json.dumps(report[name]))
            side_by_side(
                [images[0][1], rec], [images[0][0], f"{name}, {args.steps} steps: {report[name]['psnr-rgb']:.1f} dB"]
            ).save(out / f"recon_{name}_{args.steps}.png")
            write_image(out / f"rec_{name}_{args.steps}.png", rec)
        report[name]["train_wall_minutes"] = wall.get(name, 0.0) / 60  # 0: a --run trained elsewhere
        all_curves[name] = curves(run)
    figure(all_curves, {n: report[n]["train_wall_minutes"] for n in report}, out)
    # The first image by every variant of this call, one panel each (a 384x256 corner).
    corner = (slice(None), slice(0, 256), slice(0, 384))
    panels, captions = [images[0][1][corner]], [images[0][0]]
    for name in report:
        panels.append(read_image(out / f"rec_{name}_{args.steps}.png")[corner])
        captions.append(f"{name}: {report[name]['psnr-rgb']:.1f} dB, chroma {report[name]['chroma_error']:.1f}")
    side_by_side(panels, captions, title=f"{args.steps} steps").save(out / f"recon_all_{args.steps}.png")
    (out / "vq_study.json").write_text(
        json.dumps({"report": report, "curves": all_curves, "steps": args.steps, "images": len(images)}, indent=1)
    )
    keys = (
        "psnr-rgb",
        "lpips",
        "border_ratio",
        "frame_effect",
        "chroma_error",
        "psnr_unquantised",
        "chroma_unquantised",
        "latent_r2_y",
        "latent_r2_cb",
        "latent_r2_cr",
        "train_wall_minutes",
    )
    print(f"{'variant':16s} " + " ".join(f"{k:>18s}" for k in keys))
    for name, r in report.items():
        print(f"{name:16s} " + " ".join(f"{r[k]:18.3f}" for k in keys))
    print(f"wrote {out}/vq_study.json, curves.png, recon_*.png")
    return 0


if __name__ == "__main__":
    try:  # a bad checkpoint, folder or image: one line, no traceback
        sys.exit(main())
    except HDCError as e:
        sys.exit(f"vq_study: error: {e}")
