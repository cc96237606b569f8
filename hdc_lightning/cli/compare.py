"""``hdc compare IMAGE -o OUT.png``: code one image and show original | fidelity | perceptual."""

from __future__ import annotations

import argparse

from hdc_lightning.cli.common import add_force
from hdc_lightning.pretrained import add_model_args


def add_parser(sub) -> None:
    p = sub.add_parser(
        "compare",
        help="code an image with a hybrid model and write a side-by-side PNG (original | x̂_lic | x̃)",
        description="Encode IMAGE with the hybrid codec (the shipped `small` model unless --ckpt), decode both "
        "outputs and write one PNG with the original, the fidelity output x̂_lic and the perceptual output x̃, "
        "captioned with bpp (real file bytes), PSNR and LPIPS.",
    )
    p.add_argument("image", help="input image (PNG, JPEG, ...)")
    p.add_argument("-o", "--out", required=True, help="output PNG")
    add_model_args(p)
    p.add_argument("--mask", default=None, help="mask mode: auto | full | 1/4 | 1/9 | none (default: the model's)")
    p.add_argument(
        "--tile", type=int, default=None, metavar="N", help="code in tiles of at most N×N pixels, as hdc compress does"
    )
    add_force(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hdc_lightning import pretrained
    from hdc_lightning.codec.api import load_codec
    from hdc_lightning.codec.container import bits_per_pixel
    from hdc_lightning.codec.imageio import read_image, write_pil
    from hdc_lightning.codec.tiles import check_tile, is_tiled
    from hdc_lightning.errors import ConfigError
    from hdc_lightning.evaluation.metrics import MetricSuite
    from hdc_lightning.evaluation.side_by_side import describe, side_by_side
    from hdc_lightning.fileio import check_output

    if Path(args.out).suffix.lower() != ".png":
        raise ConfigError(f"{args.out}: the side-by-side is written as PNG (name it .png)")
    ref = pretrained.choose(args.model, args.ckpt)
    out = check_output(args.out, [args.image, *filter(None, [args.ckpt])], args.force)
    x = read_image(args.image)
    check_tile(args.tile, flag="--tile")
    options = {k: v for k, v in (("mask", args.mask), ("tile", args.tile)) if v is not None}
    codec = load_codec(ref, **options)
    if not hasattr(codec, "decode_full"):
        raise ConfigError(f"{ref}: not a hybrid model (no fidelity/perceptual pair to show)")
    data = codec.encode(x)
    if is_tiled(data):  # the intermediates exist per tile: decode each output on its own
        fid, per = (codec.decode(data, source=args.image, output=o).image for o in ("fidelity", "perceptual"))
    else:
        _, dec = codec.decode_full(data, source=args.image, output="both")
        fid, per = dec.x_hat_lic[0], dec.x_tilde[0]
    bpp = bits_per_pixel(len(data), x.shape[-2] * x.shape[-1])
    suite = MetricSuite(lpips=True, dists=False)
    m_fid, m_per = suite(x, fid), suite(x, per)
    captions = ["original", f"fidelity x_hat_lic: {describe(m_fid)}", f"perceptual x_tilde: {describe(m_per)}"]
    title = f"{Path(args.image).name}: {len(data)} bytes = {bpp:.4f} bpp ({codec.model_id}, mask {codec.mask})"
    write_pil(out, side_by_side([x, fid, per], captions, title))
    print(f"{out}: {bpp:.4f} bpp; fidelity {describe(m_fid)}; perceptual {describe(m_per)}")
    return 0
