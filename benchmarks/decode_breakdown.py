"""Where the hybrid decoder spends its time, per part, for the tiny and paper presets.

Decodes one Kodak image (default ../shared/data/kodak/kodim23.png) with the ``hdc`` codec
and prints the share of decode time in each part: LIC entropy decoding (rANS with its
entropy-parameter nets), LIC synthesis g_s, DRV sampling, LIC enhancer, index entropy
decoding (schedule + rANS), T, correction + VQ decoder, and the rest (container, checks,
glue). Also prints decode time / sum of network forwards, where the forwards are g_s,
the LIC entropy model run once as a plain forward (its parameter nets, ≈ what the coder
needs without the sequential rANS), the DRV sampler, enhancer, T, correction and VQ
decoder. Targets: DRV sampling ≤ 5 % of decode time; decode ≤ 1.5× the forwards.

    python benchmarks/decode_breakdown.py [--ckpt TINY_HDC_CKPT] [--presets tiny paper] [--mask auto]

Without ``--ckpt`` both presets use randomly initialised weights (timings barely depend
on the weights; rates do). Everything runs at the codec's pinned thread count
(``--threads``, default 1 as in the codec). Exits 0 with a message when the image is absent.
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
from hdc_lightning.codec.container import bits_per_pixel  # noqa: E402
from hdc_lightning.codec.hybrid import fixed_threads  # noqa: E402
from hdc_lightning.codec.imageio import read_image  # noqa: E402
from hdc_lightning.registry import build_spec  # noqa: E402

DEFAULT_IMAGE = REPO.parent / "shared" / "data" / "kodak" / "kodim23.png"


def random_checkpoint(preset: str, folder: Path) -> Path:
    torch.manual_seed(0)
    spec = {"name": "hdc", "preset": preset, "args": {}}
    path = folder / f"hdc-{preset}-random.ckpt"
    export_checkpoint(build_spec("model", spec).eval(), spec, str(path))
    return path


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


@torch.no_grad()
def breakdown(ckpt: Path, image: torch.Tensor, mask: str, threads: int, repeats: int) -> dict:
    codec = load_codec(str(ckpt), mask=mask, threads=threads)
    model = codec.model
    data = codec.encode(image)
    runs = []
    for _ in range(repeats):
        parts: dict[str, float] = {}
        t0 = time.perf_counter()
        header, out = codec.decode_full(data, output="both", timings=parts)
        parts["total"] = time.perf_counter() - t0
        runs.append(parts)
    parts = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    # Split the LIC decode into synthesis and entropy decoding; time the entropy model as a forward.
    h, w = image.shape[-2:]
    with fixed_threads(threads):
        y_hat = model.lic.decompress(model.lic.compress(image[None]).strings, (h, w)).y_hat
        parts["lic_gs"] = timed(lambda: model.lic.g_s(y_hat), repeats)
        parts["lic_entropy_forward"] = timed(lambda: model.lic.latent_codec(y_hat), repeats)
    lengths = dict(zip(codec.stream_names(), header.stream_lengths))
    return {
        "parts": parts,
        "bytes": len(data),
        "lengths": lengths,
        "hw": (h, w),
        "sent": float(out.sent.float().mean()),
    }


def report(preset: str, r: dict) -> None:
    p = r["parts"]
    total = p["total"]
    lic_entropy = max(p["lic"] - p["lic_gs"], 0.0)
    rows = [
        ("LIC entropy decoding (rANS + param nets)", lic_entropy),
        ("LIC synthesis g_s", p["lic_gs"]),
        ("DRV sampling (2 denoisers × 4 steps)", p["drv"]),
        ("LIC enhancer", p["enhancer"]),
        ("index entropy decoding (schedule + rANS)", p["index_decode"]),
        ("T (index predictor)", p["predictor"]),
        ("correction + VQ decoder", p["correction"] + p["vq_decode"]),
    ]
    rows.append(("other (container, checks, glue)", max(total - sum(t for _, t in rows), 0.0)))
    h, w = r["hw"]
    lic_bytes = sum(v for k, v in r["lengths"].items() if k not in ("schedule", "indices"))
    print(
        f"\n== preset {preset}: {w}x{h}, file {r['bytes']} B = {bits_per_pixel(r['bytes'], h * w):.4f} bpp "
        f"(LIC {lic_bytes} B, schedule {r['lengths']['schedule']} B, indices {r['lengths']['indices']} B, "
        f"{100 * r['sent']:.0f} % of tokens sent)"
    )
    print(f"{'part':44s} {'seconds':>9s} {'share':>7s}")
    for name, t in rows:
        print(f"{name:44s} {t:9.3f} {100 * t / total:6.1f}%")
    print(f"{'decode total':44s} {total:9.3f}")
    forwards = (
        p["lic_gs"]
        + p["lic_entropy_forward"]
        + p["drv"]
        + p["enhancer"]
        + p["predictor"]
        + p["correction"]
        + p["vq_decode"]
    )
    drv_share = p["drv"] / total
    ratio = total / forwards
    print(f"DRV sampling share: {100 * drv_share:.2f} % (target ≤ 5 %: {'ok' if drv_share <= 0.05 else 'MISSED'})")
    print(
        f"decode / sum of network forwards: {total:.3f} / {forwards:.3f} = {ratio:.2f} "
        f"(target ≤ 1.5: {'ok' if ratio <= 1.5 else 'MISSED'})"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    ap.add_argument("--ckpt", type=Path, default=None, help="trained tiny hdc checkpoint (else random weights)")
    ap.add_argument("--presets", nargs="+", default=["tiny", "paper"], choices=["tiny", "paper"])
    ap.add_argument("--mask", default="auto")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if not args.image.is_file():
        print(f"skipped: {args.image} not found (needs ../shared/data/kodak)")
        return 0
    image = read_image(args.image)
    print(
        f"decode breakdown of {args.image.name} at {args.threads} intra-op thread(s), mask {args.mask}, "
        f"median of {args.repeats} (torch {torch.__version__}, CPU)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for preset in args.presets:
            ckpt = args.ckpt if (args.ckpt and preset == "tiny") else random_checkpoint(preset, Path(tmp))
            weights = "trained" if ckpt == args.ckpt else "random"
            print(f"\n[{preset}: {weights} weights from {ckpt.name}]")
            report(preset, breakdown(ckpt, image, args.mask, args.threads, args.repeats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
