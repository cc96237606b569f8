"""``hdc compress IMAGE -o FILE.hdc --ckpt CKPT``: encode one image to a ``.hdc`` file.

Arguments whose ``dest`` starts with ``opt_`` are handed to ``load_codec`` as codec
options (``--device`` → ``device``), so a codec with more options only adds arguments.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser(
        "compress",
        help="encode an image to a .hdc file with a trained checkpoint",
        description="Encode IMAGE with the codec of CKPT's model; prints the file size and bpp "
        "(file bytes x 8 / pixels, container header included).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("image", help="input image (PNG, JPEG, ...)")
    p.add_argument("-o", "--output", help="output .hdc file (default: IMAGE with suffix .hdc)")
    p.add_argument("--ckpt", required=True, help="checkpoint written by `hdc fit` (e.g. runs/NAME/checkpoints/last.ckpt)")
    p.add_argument("--device", dest="opt_device", default=None, help="device for the transforms (entropy coding stays on the CPU)")
    p.add_argument("--mask", dest="opt_mask", default=None, choices=("auto", "1/4", "1/9", "full", "none"),
                   help="hybrid (hdc) checkpoints: which VQ indices are sent (default: the model's mask policy)")
    p.set_defaults(run=run)


def codec_options(args: argparse.Namespace) -> dict:
    """The ``opt_*`` arguments that were given, without the prefix."""
    return {k[4:]: v for k, v in vars(args).items() if k.startswith("opt_") and v is not None}


def run(args: argparse.Namespace) -> int:
    from hdc_lightning.codec import load_codec
    from hdc_lightning.codec.imageio import read_image
    from hdc_lightning.errors import ConfigError, DataError

    image = read_image(args.image)
    options = codec_options(args)
    try:
        codec = load_codec(args.ckpt, **options)
    except TypeError:  # a codec without this option (e.g. --mask with a LIC-only checkpoint)
        extra = ", ".join(f"--{k}" for k in options if k != "device")
        raise ConfigError(f"{args.ckpt}: this checkpoint's codec does not take {extra}") from None
    data = codec.encode(image)
    out = Path(args.output) if args.output else Path(args.image).with_suffix(".hdc")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
    except OSError as e:
        raise DataError(f"{out}: cannot write ({e.strerror or e})") from None
    h, w = image.shape[-2:]
    print(f"{out}: {len(data)} bytes, {len(data) * 8 / (h * w):.4f} bpp ({w}x{h}, model {codec.model_id})")
    return 0
