"""Learning curve of one training run: real files of each snapshot on a folder of images.

    python benchmarks/learning_curve.py --data KODAK SNAPSHOT.ckpt ... [--lpips] [--mask auto] [-o OUT]

For each checkpoint (``last.ckpt`` copies taken during one run, in step order) it prints the
step and the mean bpp (file bytes × 8 / pixels), PSNR (8-bit RGB) and, with ``--lpips``, LPIPS of
the codec's default output: the LIC's reconstruction, or the hybrid's perceptual output x̃ at
mask level ``--mask`` (with its fidelity output x̂_lic's PSNR beside it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from hdc_lightning.checkpoints import safe_load
from hdc_lightning.codec.api import load_codec
from hdc_lightning.codec.container import bits_per_pixel
from hdc_lightning.codec.hybrid import HybridCodec
from hdc_lightning.codec.imageio import read_image
from hdc_lightning.data.images import list_images
from hdc_lightning.errors import HDCError
from hdc_lightning.evaluation.metrics import MetricSuite, psnr_rgb
from hdc_lightning.evaluation.results import write_json


def measure(ref: str, images, mask: str, suite: MetricSuite | None) -> dict:
    codec = load_codec(ref)
    if isinstance(codec, HybridCodec):  # the same loaded model, at the asked mask level
        codec = HybridCodec(codec.model, codec.model_id, mask=mask)
    rows = []
    for _, x in images:
        data = codec.encode(x)
        row = {"bpp": bits_per_pixel(len(data), x.shape[-2] * x.shape[-1])}
        if isinstance(codec, HybridCodec):
            _, out = codec.decode_full(data)
            y = out.x_tilde[0]
            row["psnr_fidelity"] = psnr_rgb(x, out.x_hat_lic[0])
        else:
            y = codec.decode(data).image
        row["psnr"] = psnr_rgb(x, y)
        if suite is not None:
            row["lpips"] = suite(x, y.clamp(0, 1))["lpips"]
        rows.append(row)
    return {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("ckpts", nargs="+", metavar="CKPT", help="snapshots of one run, in step order")
    p.add_argument("--data", required=True, help="folder of evaluation images")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--mask", default="auto", help="hybrid mask level (auto, 1/4, 1/9, full)")
    p.add_argument("--lpips", action="store_true", help="also LPIPS (AlexNet) of the default output")
    p.add_argument("-o", "--out", default="results/learning_curve")
    args = p.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    files = list_images(args.data)[: args.limit]
    if not files:
        sys.exit(f"learning_curve: error: {args.data}: no images")
    images = [(f.name, read_image(f)) for f in files]
    suite = MetricSuite(lpips=True, dists=False, ms_ssim=False) if args.lpips else None
    points = []
    for ref in args.ckpts:
        step = safe_load(ref).get("global_step") if Path(ref).is_file() else None
        point = {"ckpt": ref, "step": step, **measure(ref, images, args.mask, suite)}
        points.append(point)
        print("  ".join([f"step {step!s:>6}"] + [f"{k} {v:.4f}" for k, v in point.items() if isinstance(v, float)]))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "learning_curve.json", {"images": len(images), "data": str(args.data), "points": points})
    print(json.dumps({"wrote": str(out / "learning_curve.json")}))
    return 0


if __name__ == "__main__":
    try:  # a bad checkpoint, folder or image: one line, no traceback
        sys.exit(main())
    except HDCError as e:
        sys.exit(f"learning_curve: error: {e}")
