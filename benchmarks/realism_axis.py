"""Does the realism axis order what it should? kid-vgg16 (and KID, with the Inception file) of
the originals and of blurred, JPEG and noised copies, on 256-px patches of a folder of images.

    python benchmarks/realism_axis.py --data KODAK [--limit 24] [--inception]

Prints one row per distortion (weak → strong) and whether it rises monotonically above the
originals. ``--inception`` also scores the published KID (needs torch-fidelity and the
Inception weights file, see hdc_lightning/evaluation/fid.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from hdc_lightning.codec.imageio import read_image
from hdc_lightning.data.images import list_images
from hdc_lightning.errors import HDCError
from hdc_lightning.evaluation.fid import KID_VGG16, inception_extractor, vgg16_extractor
from hdc_lightning.evaluation.realism_axis import LADDERS, distortion_ladder, ordered


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="folder of natural images (Kodak for the documented table)")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--inception", action="store_true", help="also the published KID (Inception)")
    args = p.parse_args(argv)
    images = [read_image(f) for f in list_images(args.data)[: args.limit]]
    if not images:
        sys.exit(f"realism_axis: error: {args.data}: no images")
    nets = [(KID_VGG16, vgg16_extractor())]
    if args.inception:
        nets.append(("kid", inception_extractor()))
    t0 = time.time()
    report = {}
    for name, net in nets:
        result = distortion_ladder(images, net, kid_name=name)
        report[name] = {"kid": result, "ordered": ordered(result)}
        print(f"{name} on {len(images)} images (original: {result['original'][0]:.5f})")
        for ladder, kids in result.items():
            if ladder != "original":
                levels = ", ".join(f"{lv:g}: {k:.5f}" for lv, k in zip(LADDERS[ladder][1], kids))
                print(f"  {ladder:6s} {levels}   monotone: {report[name]['ordered'][ladder]}")
    print(json.dumps({"seconds": round(time.time() - t0, 1), "threads": torch.get_num_threads()}))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except HDCError as e:
        sys.exit(f"realism_axis: error: {e}")
