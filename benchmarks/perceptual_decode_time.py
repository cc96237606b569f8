"""Decode time of the hybrid with the perceptual decoder (x̂_lic injected; also with the LIC
latent ŷ, ``perceptual_latent``) beside the latent-only path.

    python benchmarks/perceptual_decode_time.py [--data data/demo/val] [--limit 24] [--preset small]
    python benchmarks/perceptual_decode_time.py --data KODAK --ckpt small --ckpt-latent RUN/fusion/checkpoints/last.ckpt

The three models decode the same images in one run, alternating image by image, at the codec's
pinned thread count; it prints the median seconds per image of each, the ratios to the
latent-only path, and the share of the x̃ decoder (``vq_decode`` in the codec's timings). A
model without a checkpoint is the ``--preset`` with random weights (decode time barely depends
on the weights; the mask level and so T's work does, so ``--mask`` is fixed, default 1/4).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hdc_lightning.codec import export_checkpoint, load_codec  # noqa: E402
from hdc_lightning.codec.imageio import read_image  # noqa: E402
from hdc_lightning.data.images import list_images  # noqa: E402
from hdc_lightning.registry import build_spec  # noqa: E402

# variant → the hdc model args that make it
VARIANTS = {
    "inject": {"perceptual": "inject"},
    "inject+ŷ": {"perceptual": "inject", "perceptual_latent": True},
    "latent": {"perceptual": "latent"},
}


def random_checkpoint(folder: Path, preset: str, variant: str) -> str:
    spec = {"name": "hdc", "preset": preset, "args": dict(VARIANTS[variant])}
    torch.manual_seed(0)
    path = folder / f"{preset}-{variant.replace('+', '-').replace('ŷ', 'y')}.pt"
    export_checkpoint(build_spec("model", spec).eval(), spec, str(path))
    return str(path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(REPO / "data" / "demo" / "val"), help="folder of images")
    p.add_argument("--limit", type=int, default=24)
    p.add_argument("--preset", default="small")
    p.add_argument("--ckpt", default=None, help="hybrid with the perceptual decoder (name or path)")
    p.add_argument("--ckpt-y", default=None, help="hybrid whose perceptual decoder also reads ŷ (name or path)")
    p.add_argument("--ckpt-latent", default=None, help="hybrid with the latent-only path (name or path)")
    p.add_argument("--mask", default="1/4")
    args = p.parse_args(argv)
    try:
        files = list_images(args.data)[: args.limit]
    except Exception as e:  # a missing folder: nothing to time
        print(f"perceptual_decode_time: {args.data}: {e}; nothing measured")
        return 0
    if not files:
        print(f"perceptual_decode_time: {args.data}: no images (make demo-data builds data/demo); nothing measured")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        given = {"inject": args.ckpt, "inject+ŷ": args.ckpt_y, "latent": args.ckpt_latent}
        refs = {k: given[k] or random_checkpoint(Path(tmp), args.preset, k) for k in VARIANTS}
        codecs = {k: load_codec(v, mask=args.mask) for k, v in refs.items()}
        times = {k: [] for k in codecs}
        shares = {k: [] for k in codecs}
        for f in files:
            x = read_image(f)
            for k, codec in codecs.items():
                data = codec.encode(x)
                codec.decode_full(data)  # warm-up: first-call allocations are not the decoder's cost
                timings: dict = {}
                t0 = time.perf_counter()
                codec.decode_full(data, timings=timings)
                t = time.perf_counter() - t0
                times[k].append(t)
                shares[k].append(timings.get("vq_decode", 0.0) / t)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{len(files)} images from {args.data}, mask {args.mask}, {torch.get_num_threads()} torch threads")
    for k in codecs:
        share = f", x̃ decoder {100 * statistics.median(shares[k]):.0f} % of it"
        print(f"  {k:8s} {med[k]:.3f} s per image (median){share}  [{refs[k]}]")
    for k in ("inject", "inject+ŷ"):
        print(f"  ratio {k} / latent: {med[k] / med['latent']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
