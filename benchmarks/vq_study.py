"""The VQ stream's border band and colour: today's `tiny` against the fixes, at equal steps.

    python benchmarks/vq_study.py --data KODAK_DIR --shards 'data/small/train-000000.tar' [--steps 600] [--every 150]

Trains each variant with the real ``hdc fit`` (real LPIPS, no discriminator, 128² crops,
batch 4, validation on the first ``--val-images`` images of ``--data`` every ``--every``
steps), then measures every final model on all of ``--data``:

* PSNR and LPIPS (the project's metrics module), the border-band ratio (mean error in a
  32-px frame / inside it, ``evaluation/diagnostics.py``), the frame effect (the 16-px frame
  of the picture cropped by 32 px, coded alone over coded inside the whole picture: ≈ 1 when
  the codec has no edge artefact) and the chroma error (Cb/Cr of 16-px block means, ×255);
* the learning curves (val PSNR and LPIPS against steps and CPU minutes) into ``curves.png``;
* ``kodim01`` (the first image) reconstructed by each variant into ``recon_<variant>_<steps>.png``.

Rerun with more ``--steps`` to extend a finished study: each run resumes from its checkpoint.

Variants: ``tiny`` (zero padding, K=128, LPIPS weight 1.0: the configuration of the report),
``tiny-replicate`` (only the padding changed), ``tiny-lpips0.2`` (only the LPIPS weight
changed), ``small`` (replicate padding, K=512, LPIPS 0.2: the shipped model's VQ recipe) and
``small-lpips1.0`` (``small`` with the LPIPS weight of ``tiny``).
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
from hdc_lightning.codec.imageio import read_image
from hdc_lightning.data.images import list_images
from hdc_lightning.errors import HDCError
from hdc_lightning.evaluation.diagnostics import border_errors, chroma_error, frame_effect
from hdc_lightning.evaluation.metrics import MetricSuite
from hdc_lightning.evaluation.side_by_side import side_by_side
from hdc_lightning.models.lic import pad_image

VARIANTS = {
    "tiny": ["model.preset=tiny", "model.args.padding_mode=zeros", "phase.perceptual_weight=1.0"],
    "tiny-replicate": ["model.preset=tiny", "model.args.padding_mode=replicate", "phase.perceptual_weight=1.0"],
    "tiny-lpips0.2": ["model.preset=tiny", "model.args.padding_mode=zeros", "phase.perceptual_weight=0.2"],
    "small": ["model.preset=small", "phase.perceptual_weight=0.2"],
    "small-lpips1.0": ["model.preset=small", "phase.perceptual_weight=1.0"],  # small with tiny's loss weights
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="evaluation images (Kodak for the published figures)")
    p.add_argument("--shards", required=True, help="training shards (data.train.shards)")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--every", type=int, default=150, help="validation interval (steps)")
    p.add_argument("--val-images", type=int, default=4)
    p.add_argument("--variants", default=",".join(VARIANTS))
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
        for tag in ("val/psnr", "val/lpips")
        if tag in ea.Tags()["scalars"]
    }


@torch.no_grad()
def measure(run: Path, images, suite: MetricSuite) -> tuple[dict, torch.Tensor]:
    path = run / "checkpoints" / "last.ckpt"
    ckpt = safe_load(path)
    model = _load_model(ckpt, dict(checkpoint_config(ckpt, path)["model"]), str(path)).eval()

    def code(y: torch.Tensor) -> torch.Tensor:  # [B,3,H,W] of any size: padded to the token grid, cropped back
        return model(pad_image(y, model.downsample)).x_hat[..., : y.shape[-2], : y.shape[-1]]

    rows, first = [], None
    for _, x in images:
        rec = code(x[None])[0].clamp(0, 1)
        first = rec if first is None else first
        edge, inner = border_errors(x, rec, 32)
        # The same frame coded alone vs inside the whole picture: content held fixed.
        effect = frame_effect(code, x, margin=32, band=16, whole=rec)
        rows.append(
            {
                **suite(x, rec),
                "border_mae": edge,
                "interior_mae": inner,
                "border_ratio": edge / inner,
                "frame_effect": effect,
                "chroma_error": chroma_error(x, rec),
            }
        )
    mean = {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]}
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
                ax.plot(steps, values, marker="o", label=f"{name} ({minutes[name]:.0f} CPU-min)")
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
    for name in args.variants.split(","):
        seconds = train(name, args, val_dir)
        wall[name] = wall.get(name, 0.0) + seconds  # an extended run adds its new segment
        timing_file.write_text(json.dumps(wall))
        run = Path(args.root) / name
        report[name], rec = measure(run, images, suite)
        report[name]["train_wall_minutes"] = wall[name] / 60
        all_curves[name] = curves(run)
        side_by_side(
            [images[0][1], rec], [images[0][0], f"{name}, {args.steps} steps: {report[name]['psnr-rgb']:.1f} dB"]
        ).save(out / f"recon_{name}_{args.steps}.png")
    figure(all_curves, {n: report[n]["train_wall_minutes"] for n in report}, out)
    (out / "vq_study.json").write_text(
        json.dumps({"report": report, "curves": all_curves, "steps": args.steps, "images": len(images)}, indent=1)
    )
    keys = ("psnr-rgb", "lpips", "border_ratio", "frame_effect", "chroma_error", "train_wall_minutes")
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
