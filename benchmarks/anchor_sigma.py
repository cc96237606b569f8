"""x̃ of one hybrid at several low-frequency anchors σ, the same files: what `--anchor-sigma` buys.

    python benchmarks/anchor_sigma.py --data DIR [--model small] [--sigmas 0,2,4,8] [--mask none] [-o out.json]

Each image is encoded once (at ``--mask``; default: the model's policy), then decoded once per σ
with the perceptual decoder's ``anchor_sigma`` set to it (a parameter-free setting, so the
weights and the bytes are the same for every σ); PSNR, LPIPS and DISTS of x̃ (A = 1) per σ, per
image and averaged, with how many images each σ improves over the first σ given.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from hdc_lightning.codec import load_codec
from hdc_lightning.codec.imageio import read_image
from hdc_lightning.data.images import list_images
from hdc_lightning.errors import HDCError
from hdc_lightning.evaluation.metrics import MetricSuite
from hdc_lightning.evaluation.results import write_json
from hdc_lightning.models.fusion.perceptual import MAX_ANCHOR_SIGMA

KEYS = ("psnr-rgb", "lpips", "dists")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="folder of images")
    p.add_argument("--model", default="small", help="hybrid: a pretrained name or a checkpoint path")
    p.add_argument("--sigmas", default="0,2,4,8", help="comma-separated σ in pixels (0: no anchor)")
    p.add_argument("--mask", default=None, help="mask level of the files (default: the model's policy)")
    p.add_argument("--limit", type=int, default=None, help="first N images only")
    p.add_argument("--no-dists", action="store_true", help="skip DISTS (about 10 s per Kodak image on one CPU thread)")
    p.add_argument("-o", "--out", default=None, help="JSON of every number")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        sigmas = [float(s) for s in args.sigmas.split(",")]
    except ValueError:
        sys.exit(f"anchor_sigma: error: --sigmas {args.sigmas!r}: give numbers, e.g. 0,2,4,8")
    if not all(0 <= s <= MAX_ANCHOR_SIGMA for s in sigmas):
        sys.exit(f"anchor_sigma: error: --sigmas {args.sigmas!r}: each σ in [0, {MAX_ANCHOR_SIGMA:g}] pixels")
    files = list_images(args.data)[: args.limit]
    if not files:
        sys.exit(f"anchor_sigma: error: {args.data}: no images")
    codec = load_codec(args.model, mask=args.mask)
    decoder = getattr(codec.model, "perceptual", None)
    if decoder is None:
        sys.exit(f"anchor_sigma: error: {args.model}: not a hybrid with the perceptual decoder")
    suite = MetricSuite(lpips=True, dists=not args.no_dists, ms_ssim=False)
    keys = [k for k in KEYS if k != "dists" or not args.no_dists]
    rows, t0 = [], time.time()
    for f in files:
        x = read_image(f)
        data = codec.encode(x)
        row = {"name": f.name, "bytes": len(data)}
        for s in sigmas:
            decoder.anchor_sigma = s
            x_tilde = codec.decode_full(data, output="both")[1].x_tilde[0]
            m = suite(x, x_tilde)
            row[f"{s:g}"] = {k: m[k] for k in keys}
        rows.append(row)
        print(f.name, "  ".join(f"σ={s:g}: " + " ".join(f"{row[f'{s:g}'][k]:.4f}" for k in keys) for s in sigmas))
    summary = {}
    first = f"{sigmas[0]:g}"
    for s in sigmas:
        key = f"{s:g}"
        mean = {k: sum(r[key][k] for r in rows) / len(rows) for k in keys}
        better = {
            k: sum((r[key][k] > r[first][k]) if k == "psnr-rgb" else (r[key][k] < r[first][k]) for r in rows)
            for k in keys
        }
        summary[key] = {"mean": mean, f"better_than_sigma_{first}": better}
        print(f"σ={key:>4s}  " + "  ".join(f"{k} {mean[k]:.4f} (better on {better[k]})" for k in keys))
    print(f"{len(rows)} images, model {codec.model_id}, mask {codec.mask}, {time.time() - t0:.0f} s")
    if args.out:
        write_json(
            Path(args.out), {"model": str(codec.model_id), "mask": codec.mask, "summary": summary, "images": rows}
        )
    return 0


if __name__ == "__main__":
    try:  # a bad checkpoint, folder or image: one line, no traceback
        sys.exit(main())
    except HDCError as e:
        sys.exit(f"anchor_sigma: error: {e}")
