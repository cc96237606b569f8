"""``hdc demo-data OUT_DIR``: build the embedded demo shards and validation images."""

from __future__ import annotations

import argparse

from hdc_lightning.cli.common import add_force


def add_parser(sub) -> None:
    p = sub.add_parser(
        "demo-data",
        help="build the demo data from photographs bundled in pip packages",
        description="Write OUT_DIR/train-00000{0..3}.tar (random crops of photographs shipped inside the "
        "scikit-image and scikit-learn packages) and OUT_DIR/val/*.png (other photographs). Offline, "
        "deterministic, a few seconds.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("out_dir", nargs="?", default="data/demo", help="output folder")
    add_force(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from hdc_lightning.data.demo import build_demo_data

    print(build_demo_data(args.out_dir, force=args.force).summary())
    return 0
