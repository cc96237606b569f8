"""What the perceptual metrics cost per image: PSNR alone vs + MS-SSIM, + LPIPS, + DISTS.

    python benchmarks/metric_cost.py [--size 512x768] [--repeats 5]

Times each metric of the project's one metrics module (``MetricSuite``) on the same pair
of images of a Kodak-sized frame, in one process, alternating, and prints seconds per image
and the ratio to PSNR alone. A validation of N images adds N × the LPIPS + DISTS time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.append(str(Path(__file__).resolve().parents[1]))  # the repository root, for tests.helpers

from hdc_lightning.evaluation.metrics import MetricSuite  # noqa: E402
from tests.helpers.images import synthetic_image  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", default="512x768", help="HxW of the test frame")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    h, w = (int(v) for v in args.size.split("x"))
    ref = synthetic_image(h, w, seed=1)
    rec = (ref + 0.05 * torch.randn(ref.shape, generator=torch.Generator().manual_seed(2))).clamp(0, 1)
    suites = {
        "psnr": MetricSuite(lpips=False, dists=False, ms_ssim=False),
        "psnr+ms-ssim": MetricSuite(lpips=False, dists=False, ms_ssim=True),
        "psnr+lpips": MetricSuite(lpips=True, dists=False, ms_ssim=False),
        "psnr+dists": MetricSuite(lpips=False, dists=True, ms_ssim=False),
        "all": MetricSuite(lpips=True, dists=True, ms_ssim=True),
    }
    for s in suites.values():  # load the networks before timing
        s(ref, rec)
    times: dict[str, list[float]] = {k: [] for k in suites}
    for _ in range(args.repeats):
        for name, suite in suites.items():
            t0 = time.perf_counter()
            suite(ref, rec)
            times[name].append(time.perf_counter() - t0)
    base = statistics.median(times["psnr"])
    print(f"{h}x{w} frame, {torch.get_num_threads()} thread(s), median of {args.repeats}")
    print(f"{'metrics':14s} {'s/image':>9s} {'x psnr':>8s}")
    for name, ts in times.items():
        m = statistics.median(ts)
        print(f"{name:14s} {m:9.3f} {m / base:8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
