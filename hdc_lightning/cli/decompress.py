"""``hdc decompress FILE.hdc -o OUT.png --ckpt CKPT``: decode a ``.hdc`` file to an image.

Arguments whose ``dest`` starts with ``opt_`` are handed to ``codec.decode`` as decode
options, so a codec with more options (e.g. which output to write) only adds arguments.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser(
        "decompress",
        help="decode a .hdc file to an image with the checkpoint that encoded it",
        description="Decode FILE with CKPT (the file records which weights made it; others are refused).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("file", help="input .hdc file")
    p.add_argument("-o", "--out", dest="out", help="output image (default: FILE with suffix .png)")
    p.add_argument("--output", dest="opt_output", default=None, choices=("perceptual", "fidelity"),
                   help="hybrid (hdc) files: perceptual x̃ (default) or fidelity x̂_lic reconstruction")
    p.add_argument("--ckpt", required=True, help="the checkpoint the file was encoded with")
    p.add_argument("--device", default=None, help="device for the transforms (entropy decoding stays on the CPU)")
    p.set_defaults(run=run)


def decode_options(args: argparse.Namespace) -> dict:
    """The ``opt_*`` arguments that were given, without the prefix."""
    return {k[4:]: v for k, v in vars(args).items() if k.startswith("opt_") and v is not None}


def read_file(path: Path) -> bytes:
    from hdc_lightning.codec.container import MAX_FILE_BYTES
    from hdc_lightning.errors import BitstreamError

    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:  # checked before reading anything into memory
            raise BitstreamError(f"{path}: {size} bytes exceeds the {MAX_FILE_BYTES}-byte limit of the format")
        return path.read_bytes()
    except FileNotFoundError:
        raise BitstreamError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise BitstreamError(f"{path}: is a directory, not a .hdc file") from None
    except OSError as e:
        raise BitstreamError(f"{path}: cannot read ({e.strerror or e})") from None


def run(args: argparse.Namespace) -> int:
    from hdc_lightning.codec import load_codec
    from hdc_lightning.codec.imageio import write_image

    path = Path(args.file)
    data = read_file(path)
    codec = load_codec(args.ckpt, **({"device": args.device} if args.device else {}))
    decoded = codec.decode(data, source=str(path), **decode_options(args))
    out = write_image(Path(args.out) if args.out else path.with_suffix(".png"), decoded.image)
    h, w = decoded.image.shape[-2:]
    streams = ", ".join(f"{k} {v}" for k, v in decoded.stream_bytes.items())
    print(f"{out}: {w}x{h} from {len(data)} bytes ({len(data) * 8 / (h * w):.4f} bpp; "
          f"header {decoded.header_bytes} B; streams: {streams})")
    return 0
