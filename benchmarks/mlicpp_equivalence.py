"""`hdc import mlicpp` against MLIC++'s own code: same function, in float64, with random weights.

No published MLIC++ weights can be fetched here, and its code is on no registry, so this is a
one-off check a user (or a developer) runs against a checkout of ``JiangWeibeta/MLIC``:

    pip install --target REF --no-deps compressai==1.2.0b3 timm   # MLIC++'s compressai (builds from source)
    python benchmarks/mlicpp_equivalence.py --source MLIC/MLIC++ --refdeps REF

Two processes, since MLIC++ needs its own compressai version:
1. the reference side (``--reference-side``, run with REF and the checkout on the path) builds
   ``MLICPlusPlus`` at the published size, sets every parameter at random (GDN and norm
   affines, the entropy bottleneck's medians included: default values hide mapping errors),
   runs ``update()`` as the published files were, saves ``{"state_dict": ...}`` in the
   published layout, and its float64 eval-mode outputs on a random image;
2. this side imports that file with ``hdc import mlicpp``, runs our ``mlicpp`` model in
   float64 and compares: g_a's y, x_hat and both likelihoods (the limit is 1e-6), and the
   share of non-zero quantised symbols (so the comparison is not vacuous). It then codes the
   image with our exact entropy side (the decoder's latent must equal the encoder's), and
   times coding a Kodak-sized image.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

LIMIT = 1e-6
SIZE = (128, 192)  # a multiple of 64: MLIC++'s code does not pad
KODAK = (512, 768)  # the coding time is measured at Kodak's size
sys.path.append(str(Path(__file__).resolve().parents[1]))  # the repository root, for tests.helpers


def reference_side(out_dir: Path, seed: int) -> None:
    from config.config import model_config  # the checkout's modules
    from models import MLICPlusPlus

    from tests.helpers.published_mlicpp import randomise

    torch.set_default_dtype(torch.float64)  # its checkerboard helpers allocate in the default dtype
    torch.manual_seed(seed)
    ref = MLICPlusPlus(model_config()).eval()
    randomise(ref, seed)
    with torch.no_grad():  # the file holds float32: compare on exactly those values
        for t in ref.state_dict().values():
            if t.is_floating_point():
                t.copy_(t.float().double())
    ref.update(force=True)
    x = torch.rand(1, 3, *SIZE, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64)
    with torch.no_grad():
        out = ref(x)
        y = ref.g_a(x)
    state = {k: v.float() if v.is_floating_point() else v for k, v in ref.state_dict().items()}
    torch.save({"state_dict": state, "epoch": 0}, out_dir / "mlicpp_random.pth.tar")
    torch.save(
        {"x": x, "y": y, "x_hat": out["x_hat"], "y_lk": out["likelihoods"]["y_likelihoods"],
         "z_lk": out["likelihoods"]["z_likelihoods"]},
        out_dir / "reference_outputs.pt",
    )  # fmt: skip


def our_side(out_dir: Path) -> int:
    from hdc_lightning.codec import load_codec
    from hdc_lightning.importers import import_file
    from hdc_lightning.models.lic import estimated_bits

    manifest = import_file("mlicpp", out_dir / "mlicpp_random.pth.tar", out_dir / "stage", force=True)
    print(f"imported: {manifest['model']} (mapping version {manifest['mapping_version']})")
    codec = load_codec(str(out_dir / "stage" / manifest["checkpoint"]))
    model = codec.model.double().eval()
    ref = torch.load(out_dir / "reference_outputs.pt", weights_only=True)
    symbols = []
    hook = model.gaussian_conditional.register_forward_hook(
        lambda m, args, out: symbols.append(torch.round(args[0] - args[2]))
    )
    with torch.no_grad():
        ours = model(ref["x"])
        y = model.g_a(ref["x"])
    hook.remove()
    diffs = {
        "y": (y - ref["y"]).abs().max().item(),
        "x_hat": (ours.x_hat - ref["x_hat"]).abs().max().item(),
        "y likelihoods": (ours.likelihoods["y"] - ref["y_lk"]).abs().max().item(),
        "z likelihoods": (ours.likelihoods["z"] - ref["z_lk"]).abs().max().item(),
    }
    nonzero = torch.cat([s.flatten() for s in symbols]).ne(0).double().mean().item()
    for k, v in diffs.items():
        print(f"max |ours - MLIC++| {k}: {v:.3g}")
    print(f"non-zero quantised symbols of y: {100 * nonzero:.1f} %")
    ok = all(v <= LIMIT for v in diffs.values()) and nonzero > 0.2
    model.float()
    x = ref["x"].float()
    with torch.no_grad():
        c = model.compress(x)
        d = model.decompress(c.strings, c.shape)
        est = estimated_bits(model(x).likelihoods).item()
    n = len(c.strings[0][0])
    print(
        f"exact coding: {n} bytes ({8 * n / est:.4f} x the float estimate {est / 8:.0f}), "
        f"decoded latent equal to the encoder's: {torch.equal(c.y_hat, d.y_hat)}, "
        f"max |exact - float| y_hat: {(d.y_hat - ours.y_hat.float()).abs().max().item():.3g}"
    )
    torch.set_num_threads(1)  # the codec's own pin
    big = torch.rand(1, 3, *KODAK, generator=torch.Generator().manual_seed(9))
    start = time.perf_counter()
    c = model.compress(big)
    mid = time.perf_counter()
    model.decompress(c.strings, c.shape)
    print(
        f"a {KODAK[0]}x{KODAK[1]} image, one thread: compress {mid - start:.1f} s, "
        f"decompress {time.perf_counter() - mid:.1f} s"
    )
    print("EQUIVALENT" if ok else f"NOT EQUIVALENT (limit {LIMIT})")
    return 0 if ok else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--source", help="the MLIC++ folder of a JiangWeibeta/MLIC checkout")
    where.add_argument(
        "--reference", metavar="DIR", help="a folder a reference side already wrote (file and outputs): compare only"
    )
    p.add_argument("--refdeps", default="", help="folder with MLIC++'s compressai (1.2.0b3) and timm")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reference-side", metavar="DIR", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.reference_side:
        reference_side(Path(args.reference_side), args.seed)
        return 0
    if args.reference:
        return our_side(Path(args.reference))
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(x for x in (args.refdeps, args.source) if x))
        cmd = [sys.executable, __file__, "--source", args.source, "--seed", str(args.seed), "--reference-side", tmp]
        done = subprocess.run(cmd, env=env, cwd=args.source)
        if done.returncode:
            print(f"{args.source}: the reference side failed (exit {done.returncode})", file=sys.stderr)
            return 2
        return our_side(Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
