"""``hdc decompress FILE.hdc [-o OUT.png] [--model NAME | --ckpt CKPT]``: decode a ``.hdc`` file to an image.

Arguments whose ``dest`` starts with ``opt_`` are handed to ``codec.decode`` as decode
options, so a codec with more options (e.g. which output to write) only adds arguments.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hdc_lightning.cli.common import add_force
from hdc_lightning.pretrained import add_model_args

DECODED_SUFFIX = ".decoded.png"


def add_parser(sub) -> None:
    p = sub.add_parser(
        "decompress",
        help="decode a .hdc file to an image with the model that encoded it",
        description="Decode FILE with the shipped model (default: small) or CKPT (the file records which weights "
        "made it; others are refused).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("file", help="input .hdc file")
    p.add_argument(
        "-o",
        "--out",
        dest="out",
        help="output image, its type from the suffix (default: FILE's name "
        "with suffix .decoded.png, so photo.hdc never overwrites photo.png)",
    )
    p.add_argument(
        "--output",
        dest="opt_output",
        default=None,
        choices=("perceptual", "fidelity"),
        help="hybrid (hdc) files: perceptual x̃ (default) or fidelity x̂_lic reconstruction",
    )
    p.add_argument(
        "--realism",
        metavar="A",
        default=None,
        help="hybrid (hdc) files: realism A in [0, 1] of the output (1 = perceptual x̃); see --realism-mode "
        "(docs/operating-point.md)",
    )
    p.add_argument(
        "--realism-mode",
        dest="opt_realism_mode",
        default=None,
        choices=("learned", "blend"),
        help="learned: x̃ decoded at level A by the realism-conditioned decoder (default when the model has "
        "one; A = 0 is its MSE-trained output); blend: the pixel mix (1-A)·x̂_lic + A·x̃ (A = 0 is x̂_lic)",
    )
    add_model_args(p, "decode")  # must be the model the file was encoded with (its id is checked)
    p.add_argument("--device", default=None, help="device for the transforms (entropy decoding stays on the CPU)")
    add_force(p)
    p.set_defaults(run=run)


def decode_options(args: argparse.Namespace) -> dict:
    """The ``opt_*`` arguments that were given, without the prefix."""
    return {k[4:]: v for k, v in vars(args).items() if k.startswith("opt_") and v is not None}


def default_output(path: Path) -> Path:
    """``photo.hdc`` → ``photo.decoded.png``: never the name of the image that was compressed."""
    return path.with_name(path.with_suffix("").name + DECODED_SUFFIX)


def run(args: argparse.Namespace) -> int:
    from hdc_lightning.cli.common import check_device
    from hdc_lightning.codec import load_codec
    from hdc_lightning.codec.container import MAX_FILE_BYTES, bits_per_pixel
    from hdc_lightning.codec.imageio import image_format, write_image
    from hdc_lightning.fileio import check_output, read_regular

    path = Path(args.file)
    from hdc_lightning.pretrained import choose

    ref = choose(args.model, args.ckpt)
    data = read_regular(path, MAX_FILE_BYTES, ".hdc file")
    out = check_output(args.out or default_output(path), [path, *filter(None, [args.ckpt])], args.force)
    image_format(out)  # an unknown suffix fails now, not after decoding
    check_device(args.device)
    options = decode_options(args)
    if args.realism is not None:
        from hdc_lightning.codec.hybrid import check_realism

        options["realism"] = check_realism(args.realism, "--realism")
    codec = load_codec(ref, **({"device": args.device} if args.device else {}))
    decoded = codec.decode(data, source=str(path), **options)
    write_image(out, decoded.image)
    h, w = decoded.image.shape[-2:]
    streams = ", ".join(f"{k} {v}" for k, v in decoded.stream_bytes.items())
    print(
        f"{out}: {w}x{h} from {len(data)} bytes ({bits_per_pixel(len(data), h * w):.4f} bpp; "
        f"header {decoded.header_bytes} B; streams: {streams})"
    )
    return 0
