"""``hdc shards SRC OUT_DIR``: pack a folder of images into WebDataset tar shards."""

from __future__ import annotations

import argparse

from hdc_lightning.cli.common import add_force


def _positive(text: str) -> int:
    try:
        value = int(float(text)) if "e" in text.lower() else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1 (got {value})")
    return value


def add_parser(sub) -> None:
    p = sub.add_parser(
        "shards",
        help="write WebDataset shards from a folder of images",
        description="Write <OUT_DIR>/<prefix>-000000.tar, … from the images under SRC (PNG/JPEG/WebP/BMP/TIFF, "
        "recursive, sorted). --format raw stores decoded RGB pixels (fastest to train from, larger on disk); "
        "--format png keeps PNG/JPEG files byte for byte unless --resize/--center-crop is given. Unreadable files "
        "are skipped and listed at the end. Use the printed pattern as data.train.shards.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("src", help="folder of images (searched recursively)")
    p.add_argument("out_dir", help="folder for the shards (created if missing)")
    p.add_argument("--prefix", default="train", help="shard file name prefix")
    p.add_argument("--max-samples", type=_positive, default=1000, help="images per shard at most")
    p.add_argument("--max-bytes", type=_positive, default=1 << 30, help="bytes per shard at most (e.g. 5e8)")
    p.add_argument(
        "--resize",
        type=_positive,
        default=None,
        metavar="S",
        help="downscale so the shorter side is at most S pixels (re-encoded as PNG with --format png)",
    )
    p.add_argument(
        "--center-crop",
        type=_positive,
        default=None,
        metavar="S",
        help="cut the central SxS square after --resize (smaller images are skipped)",
    )
    p.add_argument(
        "--format",
        dest="fmt",
        choices=("raw", "png"),
        default="raw",
        help="raw: uncompressed RGB pixels, no decoding while training (several times faster "
        "loading; ~1-2x the size of PNG files, 4-10x that of JPEG files); png: compressed PNG/JPEG, "
        "decoded at every read",
    )
    p.add_argument("--no-recursive", dest="recursive", action="store_false", help="only SRC itself, no subfolders")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_force(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from hdc_lightning.data.shards import write_shards

    report = write_shards(
        args.src,
        args.out_dir,
        prefix=args.prefix,
        max_samples=args.max_samples,
        max_bytes=args.max_bytes,
        resize=args.resize,
        center_crop=args.center_crop,
        recursive=args.recursive,
        progress=not args.quiet,
        fmt=args.fmt,
        force=args.force,
    )
    print(report.summary())
    print(f"use: data.train.shards={report.pattern}")
    return 0
