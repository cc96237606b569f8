"""``hdc compress IMAGE [-o FILE.hdc] [--model NAME | --ckpt CKPT]``: encode one image to a ``.hdc`` file.

Arguments whose ``dest`` starts with ``opt_`` are handed to ``load_codec`` as codec
options (``--device`` → ``device``), so a codec with more options only adds arguments.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hdc_lightning.cli.common import add_force
from hdc_lightning.pretrained import add_model_args


def add_parser(sub) -> None:
    p = sub.add_parser(
        "compress",
        help="encode an image to a .hdc file (the shipped `small` model, or a trained checkpoint)",
        description="Encode IMAGE with the shipped model (default: small) or the codec of CKPT's model; prints the file size and bpp "
        "(file bytes x 8 / pixels, container header included).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        conflict_handler="resolve",  # compress's --ckpt (below) may repeat: rate points for --target-bpp
    )
    p.add_argument("image", help="input image (PNG, JPEG, ...)")
    p.add_argument(
        "-o",
        "--output",
        help="output .hdc file (default: IMAGE with suffix .hdc); an existing file is "
        "replaced only if it is an .hdc file, or with --force",
    )
    add_model_args(p)
    p.add_argument(
        "--ckpt",
        action="append",
        default=None,
        help="checkpoint written by `hdc fit`, a run folder or a ladder folder; repeat it to give "
        "--target-bpp several rate points",
    )
    p.add_argument(
        "--target-bpp",
        metavar="R",
        default=None,
        help="the best expected-quality file of at most R bpp, chosen by real encodes among the mask "
        "levels and the rate points given (docs/operating-point.md)",
    )
    p.add_argument(
        "--device", dest="opt_device", default=None, help="device for the transforms (entropy coding stays on the CPU)"
    )
    p.add_argument(
        "--mask",
        dest="opt_mask",
        default=None,
        metavar="LEVEL",
        help="hybrid (hdc) checkpoints: which VQ indices are sent, auto | full | 1/4 | 1/9 | none "
        "(default: the model's mask policy)",
    )
    p.add_argument(
        "--tile",
        dest="opt_tile",
        type=int,
        default=None,
        metavar="N",
        help="code in tiles of at most N×N pixels, one file (0: never; 64..2048); default: one piece up to "
        "the format's 4.2 Mpx, tiles of 1024 beyond (docs/format.md#tiled-files)",
    )
    add_force(p)
    p.set_defaults(run=run)


def codec_options(args: argparse.Namespace) -> dict:
    """The ``opt_*`` arguments that were given, without the prefix."""
    return {k[4:]: v for k, v in vars(args).items() if k.startswith("opt_") and v is not None}


def run(args: argparse.Namespace) -> int:
    from hdc_lightning.cli.common import check_device, check_mask
    from hdc_lightning.codec import load_codec
    from hdc_lightning.codec.container import bits_per_pixel
    from hdc_lightning.codec.imageio import read_image
    from hdc_lightning.codec.tiles import check_tile
    from hdc_lightning.errors import ConfigError
    from hdc_lightning.fileio import check_output, write_bytes
    from hdc_lightning.pretrained import choose

    ckpts = args.ckpt or []
    if args.target_bpp is not None:
        return run_target(args, ckpts)
    if len(ckpts) > 1:
        raise ConfigError("several --ckpt are rate points for --target-bpp; give one without it")
    ref = choose(args.model, ckpts[0] if ckpts else None)
    image = read_image(args.image)
    out = check_output(args.output or Path(args.image).with_suffix(".hdc"), [args.image, *ckpts], args.force)
    check_device(args.opt_device)
    check_mask(args.opt_mask)
    check_tile(args.opt_tile, flag="--tile")
    options = codec_options(args)
    try:
        codec = load_codec(ref, **options)
    except TypeError:  # a codec without this option (e.g. --mask with a LIC-only checkpoint)
        extra = ", ".join(f"--{k}" for k in options if k != "device")
        raise ConfigError(f"{ref}: this checkpoint's codec does not take {extra}") from None
    data = codec.encode(image)
    write_bytes(out, data)
    h, w = image.shape[-2:]
    print(f"{out}: {len(data)} bytes, {bits_per_pixel(len(data), h * w):.4f} bpp ({w}x{h}, model {codec.model_id})")
    return 0


def run_target(args: argparse.Namespace, ckpts: list[str]) -> int:
    """``--target-bpp R``: rate control over the mask levels and the rate points given."""
    from hdc_lightning.cli.common import check_device
    from hdc_lightning.codec import load_codec
    from hdc_lightning.codec.imageio import read_image
    from hdc_lightning.codec.rate_control import Point, choose, parse_targets, point_label, resolve_points
    from hdc_lightning.codec.tiles import check_tile
    from hdc_lightning.errors import ConfigError
    from hdc_lightning.fileio import check_output, write_bytes
    from hdc_lightning.pretrained import choose as model_ref
    from hdc_lightning.pretrained import is_pretrained

    targets = parse_targets(args.target_bpp)
    if len(targets) != 1:
        raise ConfigError(f"--target-bpp {args.target_bpp}: give one rate for one file (hdc eval takes a list)")
    if args.opt_mask is not None:
        raise ConfigError("--target-bpp chooses the mask level itself; drop --mask")
    if args.model and ckpts:
        model_ref(args.model, ckpts[0])  # says: one or the other
    refs = resolve_points(ckpts or [model_ref(args.model, None)])
    image = read_image(args.image)
    out = check_output(args.output or Path(args.image).with_suffix(".hdc"), [args.image, *ckpts], args.force)
    check_device(args.opt_device)
    check_tile(args.opt_tile, flag="--tile")
    points = [Point(point_label(r), load_codec(r, **codec_options(args))) for r in refs]  # --mask refused above
    pick = choose(points, image, targets[0])
    write_bytes(out, pick.data)
    h, w = image.shape[-2:]
    ref = refs[pick.index]
    how = f"--model {ref}" if is_pretrained(ref) else f"--ckpt {ref}"
    print(
        f"{out}: {len(pick.data)} bytes, {pick.bpp:.4f} bpp <= {targets[0]:g} ({w}x{h}); chose rate point "
        f"{pick.point}, mask {pick.mask or '-'} ({pick.encodes} encodes); decode with {how}"
    )
    return 0
