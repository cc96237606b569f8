"""The LIC stream alone against AVIF at matched bytes (its learning curve: learning_curve.py).

    python benchmarks/lic_study.py --data KODAK --ladder small-lic-lo small-lic small-lic-hi

Each rate point of ``--ladder`` coded, and AVIF given at most
that file's bytes per image (the lowest AVIF quality when it cannot get that small: such
images are counted and left out of the matched means); ΔPSNR per point and the BD-rate of the
ladder against AVIF on PSNR. bpp = file bytes × 8 / pixels; PSNR is the project's 8-bit RGB
PSNR (the ``psnr-rgb`` column of every study).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from hdc_lightning.codec.api import load_codec
from hdc_lightning.codec.container import bits_per_pixel
from hdc_lightning.codec.imageio import read_image
from hdc_lightning.data.images import list_images
from hdc_lightning.errors import HDCError
from hdc_lightning.evaluation import bd, classical
from hdc_lightning.evaluation.metrics import psnr_rgb
from hdc_lightning.evaluation.results import write_json


def code_all(ref: str, images) -> list[dict]:
    codec = load_codec(ref)
    rows = []
    for name, x in images:
        data = codec.encode(x)
        y = codec.decode(data).image
        rows.append({"name": name, "bpp": bits_per_pixel(len(data), x.shape[-2] * x.shape[-1]), "psnr": psnr_rgb(x, y)})
    return rows


def mean(rows: list[dict], key: str) -> float:
    return sum(float(r[key]) for r in rows) / len(rows)


def ladder(refs: list[str], images) -> dict:
    matcher, points = classical.RateMatcher(), []
    for ref in refs:
        lic = code_all(ref, images)
        avif = []
        for (name, x), r in zip(images, lic):
            enc = matcher.match("avif", x, r["bpp"], key=name)
            bpp = enc.bpp
            avif.append(
                {"name": name, "bpp": bpp, "psnr": psnr_rgb(x, classical.decode(enc.data)), "reached": bpp <= r["bpp"]}
            )
        both = [(a, b) for a, b in zip(lic, avif) if b["reached"]]
        point = {
            "ckpt": ref,
            "lic_bpp": mean(lic, "bpp"),
            "lic_psnr": mean(lic, "psnr"),
            "avif_reached": len(both),
            "matched_lic_bpp": mean([a for a, _ in both], "bpp") if both else None,
            "matched_lic_psnr": mean([a for a, _ in both], "psnr") if both else None,
            "matched_avif_bpp": mean([b for _, b in both], "bpp") if both else None,
            "matched_avif_psnr": mean([b for _, b in both], "psnr") if both else None,
            "avif_all_bpp": mean(avif, "bpp"),
            "avif_all_psnr": mean(avif, "psnr"),
        }
        points.append(point)
        gap = (
            ""
            if not both
            else f"  ΔPSNR vs AVIF on those {point['matched_lic_psnr'] - point['matched_avif_psnr']:+.2f} dB"
        )
        print(
            f"{ref}: LIC {point['lic_bpp']:.4f} bpp {point['lic_psnr']:.2f} dB; AVIF reached the rate on "
            f"{len(both)}/{len(images)} images{gap}",
            flush=True,
        )
    result = {"points": points}
    # The mean curves: AVIF's points are the per-image matches (its lowest quality where it cannot
    # get smaller), so they sit at or above the LIC's rates.
    curves = (
        [p["avif_all_bpp"] for p in points],
        [p["avif_all_psnr"] for p in points],
        [p["lic_bpp"] for p in points],
        [p["lic_psnr"] for p in points],
    )
    for key, fn in (("bd_rate_lic_vs_avif_psnr_percent", bd.bd_rate), ("bd_psnr_lic_vs_avif_db", bd.bd_psnr)):
        try:
            result[key] = fn(*curves, names=("avif", "lic"))
        except Exception as e:  # curves that do not overlap (in quality, or in rate) have none
            result[key] = f"n/a ({(str(e).splitlines() or ['error'])[0]})"
        print(f"{key}: {result[key]}")
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="folder of evaluation images")
    p.add_argument("--ladder", nargs="+", required=True, metavar="CKPT", help="LIC rate points, low to high")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("-o", "--out", default="results/lic_study")
    args = p.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    files = list_images(args.data)[: args.limit]
    if not files:
        sys.exit(f"lic_study: error: {args.data}: no images")
    images = [(f.name, read_image(f)) for f in files]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"images": len(images), "data": str(args.data), **ladder(args.ladder, images)}
    write_json(out / "lic_study.json", result)
    print(json.dumps({"wrote": str(out / "lic_study.json")}))
    return 0


if __name__ == "__main__":
    try:  # a bad checkpoint, folder or image: one line, no traceback
        sys.exit(main())
    except HDCError as e:
        sys.exit(f"lic_study: error: {e}")
