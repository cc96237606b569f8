"""Target-bpp rate control on a folder of images: does each file land in [0.9 R, R], and what does it cost?

    python benchmarks/operating_point.py --data KODAK_DIR [--model small] [--targets 0.05,0.07,0.08,0.1]

For every image it times one plain encode (the codec's default mask) and, for each target R,
``rate_control.choose`` with the given rate points (``--model``, repeatable: a shipped name
or a checkpoint), side by side in one run. It prints, per R: how many images reached R, how
many of those landed within [0.9 R, R], the mean bpp and number of real encodes of the
choice, which masks were chosen, and the encode time relative to the plain encode. Every
bpp is file bytes × 8 / pixels; a file over R would be counted as a failure. Writes the
per-image rows as JSON (``-o``).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import torch

from hdc_lightning.codec import rate_control
from hdc_lightning.codec.api import load_codec
from hdc_lightning.codec.container import bits_per_pixel
from hdc_lightning.codec.imageio import read_image
from hdc_lightning.data.images import list_images
from hdc_lightning.errors import HDCError
from hdc_lightning.evaluation.results import write_json


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="folder of images (Kodak for the published table)")
    p.add_argument("--model", action="append", default=None, help="rate point (default: the shipped `small`)")
    p.add_argument("--targets", default="0.05,0.07,0.08,0.1", help="comma-separated target bpp")
    p.add_argument("--limit", type=int, default=None, help="first N images only")
    p.add_argument("-o", "--out", default="results/operating_point.json", help="per-image rows (JSON)")
    return p.parse_args(argv)


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def main(argv=None) -> int:
    args = parse_args(argv)
    try:  # a bad target, checkpoint, folder or image: one line, no traceback
        return run(args)
    except HDCError as e:
        sys.exit(f"operating_point: error: {e}")


def run(args: argparse.Namespace) -> int:
    targets = rate_control.parse_targets(args.targets)
    refs = args.model or ["small"]
    points = [rate_control.Point(ref, load_codec(ref)) for ref in refs]
    files = list_images(args.data)[: args.limit]
    if not files:
        raise HDCError(f"{args.data}: no images")
    rows = []
    with torch.no_grad():
        for f in files:
            x = read_image(f)
            pixels = x.shape[-2] * x.shape[-1]
            plain, t_plain = timed(points[0].codec.encode, x)
            for r in targets:
                # fallback: an image whose smallest file is above R comes back as that file,
                # reached=False (what `hdc compress` refuses in one line naming that size).
                c, t = timed(rate_control.choose, points, x, r, True)
                row = {"bpp": c.bpp, "mask": c.mask, "point": c.point, "encodes": c.encodes, "reached": c.fits}
                rows.append(
                    {
                        "image": f.name,
                        "target": r,
                        "plain_bpp": bits_per_pixel(len(plain), pixels),
                        "plain_s": t_plain,
                        "seconds": t,
                        **row,
                    }
                )
            print(f"{f.name}: plain {bits_per_pixel(len(plain), pixels):.4f} bpp in {t_plain:.2f} s", flush=True)
    print(f"\n{len(files)} images, rate points {', '.join(refs)}")
    print(
        f"{'R':>6s} {'reached':>8s} {'in[.9R,R]':>10s} {'over R':>7s} {'mean bpp':>9s} {'encodes':>8s} "
        f"{'time/plain':>11s}  masks chosen"
    )
    summary = {}
    for r in targets:
        rs = [row for row in rows if row["target"] == r]
        ok = [row for row in rs if row["reached"]]
        within = sum(0.9 * r <= row["bpp"] <= r for row in ok)
        over = sum(row["bpp"] > r for row in ok)  # a chosen file over R: rate control broke its promise
        mean = lambda key, rows_=ok: sum(row[key] for row in rows_) / len(rows_) if rows_ else float("nan")  # noqa: E731
        ratio = sum(row["seconds"] / row["plain_s"] for row in ok) / len(ok) if ok else float("nan")
        masks = Counter(str(row["mask"]) for row in ok)
        summary[str(r)] = {
            "images": len(rs),
            "reached": len(ok),
            "within": within,
            "over": over,
            "mean_bpp": mean("bpp"),
            "mean_encodes": mean("encodes"),
            "time_ratio": ratio,
            "masks": dict(masks),
            "smallest_refused": [row["bpp"] for row in rs if not row["reached"]],
        }
        print(
            f"{r:6g} {len(ok):4d}/{len(rs):<3d} {within:6d}/{len(ok):<3d} {over:7d} {mean('bpp'):9.4f} "
            f"{mean('encodes'):8.2f} {ratio:10.2f}×  {dict(masks)}"
        )
    out = Path(args.out)
    write_json(out, {"data": str(args.data), "points": refs, "targets": targets, "summary": summary, "rows": rows})
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
