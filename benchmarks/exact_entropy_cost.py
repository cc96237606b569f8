"""What the fixed-point entropy side costs against a float one, on a folder of images.

Both paths code with the same CDF tables and the same one-stream rANS coder; they differ
only in how h_s, the contexts and the parameter nets compute the table indices and means:
float32 (the path hdc used before format 2, which only its own CPU could decode) or the
exact fixed-point nets every machine computes alike. Bits are the real bytes of each stream.

    python benchmarks/exact_entropy_cost.py --data ~/kodak --model small-lic
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from hdc_lightning.codec import load_codec
from hdc_lightning.codec.imageio import read_image
from hdc_lightning.data.images import list_images
from hdc_lightning.errors import HDCError
from hdc_lightning.evaluation.metrics import psnr_rgb
from hdc_lightning.models.lic import pad_image
from hdc_lightning.models.lic.coder import SharedDecoder, SharedEncoder, shared_stream
from hdc_lightning.models.lic.exact import exact_latent_codec


@torch.no_grad()
def code(model, lc, x: torch.Tensor, dtype: torch.dtype) -> tuple[int, torch.Tensor, float]:
    """(bytes, decoded image, seconds to decode) with latent codec ``lc`` computing in ``dtype``."""
    h, w = x.shape[-2:]
    y = model.g_a(pad_image(x[None])).to(dtype)
    enc = SharedEncoder()
    with shared_stream(lc, enc):
        lc.compress(y)
    data = enc.flush()
    t0 = time.perf_counter()
    placeholders = [[b""]] * (2 * len(model.groups) + 1)
    with shared_stream(lc, SharedDecoder(data)):
        y_hat = lc.decompress(placeholders, model._latent_shapes(h, w))["y_hat"].float()
    x_hat = model.g_s(y_hat)[0, :, :h, :w]
    return len(data), x_hat, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="folder of images (e.g. the 24 Kodak PNGs)")
    p.add_argument("--model", default="small-lic", help="a shipped LIC model or a checkpoint")
    p.add_argument("--limit", type=int, default=0, help="first N images only (0: all)")
    a = p.parse_args(argv)
    try:
        model = load_codec(a.model).model
        images = list_images(a.data)[: a.limit or None]
        pairs = [(f, read_image(f)) for f in images]
    except HDCError as e:
        print(f"exact_entropy_cost: error: {e}", file=sys.stderr)
        return 2
    float_lc = model.latent_codec
    exact_lc = exact_latent_codec(model.latent_codec)
    rows = []
    for f, x in pairs:
        px = x.shape[-2] * x.shape[-1]
        nf, xf, tf = code(model, float_lc, x, torch.float32)
        ne, xe, te = code(model, exact_lc, x, torch.float64)
        rows.append((8 * nf / px, psnr_rgb(x, xf.clamp(0, 1)), tf, 8 * ne / px, psnr_rgb(x, xe.clamp(0, 1)), te))
        print(
            f"{Path(f).name}: float {rows[-1][0]:.5f} bpp {rows[-1][1]:.3f} dB | exact {rows[-1][3]:.5f} bpp {rows[-1][4]:.3f} dB"
        )
    mean = [sum(r[i] for r in rows) / len(rows) for i in range(6)]
    print(f"{len(rows)} images, model {a.model}")
    print(f"float path: {mean[0]:.5f} bpp, {mean[1]:.3f} dB, decode {mean[2]:.3f} s/image")
    print(f"exact path: {mean[3]:.5f} bpp, {mean[4]:.3f} dB, decode {mean[5]:.3f} s/image")
    print(
        f"exact vs float: {100 * (mean[3] / mean[0] - 1):+.3f} % bpp, {mean[4] - mean[1]:+.4f} dB, {mean[5] / mean[2]:.2f}x decode time"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
