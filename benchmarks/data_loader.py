"""Images/s of the WebDataset training loader (PNG and raw shards) vs a plain folder-of-PNGs Dataset.

All three read the same demo images: a folder of PNG files, shards holding those very
PNG files (``hdc shards --format png``) and shards of their raw RGB pixels
(``hdc shards --format raw``). Each takes 256x256 random crops with a random flip,
batches 16 and uses 2 worker processes; one decoded image gives one crop everywhere
(the same work). The loaders run in turn within each round, the ratio to the folder
loader is taken per round, and the medians over rounds are printed (robust to a busy
machine).

    python benchmarks/data_loader.py [--batches 60 --rounds 5 --demo data/demo]

Builds the demo data first if it is missing (``hdc demo-data``).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hdc_lightning.data.demo import build_demo_data  # noqa: E402
from hdc_lightning.data.shards import write_shards  # noqa: E402
from hdc_lightning.data.webdataset import ShardStream, _Skips, decode_sample, expand_shards, read_shard  # noqa: E402

FOLDER = "folder of PNGs (PIL)"


class PngFolder(Dataset):
    """The plain baseline: one PNG file per item, PIL decode, crop, flip, to tensor."""

    def __init__(self, files: list[Path], crop: int):
        self.files, self.crop = files, crop

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> torch.Tensor:
        import numpy as np
        from PIL import Image

        with Image.open(self.files[i]) as im:
            im = im.convert("RGB")
        w, h = im.size
        left, top = random.randint(0, max(w - self.crop, 0)), random.randint(0, max(h - self.crop, 0))
        im = im.crop((left, top, left + self.crop, top + self.crop))  # PIL pads past the edge with black
        x = torch.from_numpy(np.array(im)).permute(2, 0, 1).float().div(255)
        return x.flip(-1) if random.random() < 0.5 else x


def export_pngs(urls: list[str], out: Path) -> list[Path]:
    """The demo images (whatever format their shards use) as PNG files in ``out``."""
    from PIL import Image

    out.mkdir(parents=True)
    files = []
    for url in urls:
        for sample in read_shard(url, _Skips()):
            path = out / f"{sample['__key__']}.png"
            Image.fromarray(decode_sample(sample).permute(1, 2, 0).numpy()).save(path)
            files.append(path)
    return files


def shard_set(src: Path, out: Path, fmt: str, n_shards: int, n_files: int) -> tuple[str, int]:
    """Shards of ``src`` in format ``fmt``: (pattern, bytes on disk)."""
    report = write_shards(src, out, max_samples=math.ceil(n_files / n_shards), progress=False, fmt=fmt)
    return report.pattern, sum(p.stat().st_size for p in report.shards)


def rate(loader, batches: int, batch_size: int, warmup: int) -> float:
    """Images/s over ``batches`` batches after ``warmup`` ones (start-up and the batches
    the workers prefetched while starting are not counted)."""
    it = iter(loader)
    for _ in range(warmup):
        next(it)
    t0 = time.perf_counter()
    for _ in range(batches):
        next(it)
    dt = time.perf_counter() - t0
    del it
    return batches * batch_size / dt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo", default=str(REPO / "data" / "demo"))
    ap.add_argument("--batches", type=int, default=60)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)

    demo = Path(args.demo)
    if not (demo / "train-000003.tar").exists():
        print(build_demo_data(demo).summary())
    demo_urls = expand_shards(str(demo / "train-{000000..000003}.tar"))
    warmup = 2 * args.workers + 1  # prefetch_factor (2) batches per worker, plus the first
    n = args.batches + warmup
    with tempfile.TemporaryDirectory() as tmp:
        files = export_pngs(demo_urls, Path(tmp) / "png")
        loaders = {
            FOLDER: DataLoader(
                PngFolder(files, args.crop),
                batch_size=args.batch_size,
                num_workers=args.workers,
                sampler=RandomSampler(files, replacement=True, num_samples=n * args.batch_size),
            ),
        }
        sizes = {}
        for fmt in ("png", "raw"):
            pattern, sizes[fmt] = shard_set(Path(tmp) / "png", Path(tmp) / fmt, fmt, len(demo_urls), len(files))
            stream = ShardStream(
                expand_shards(pattern),
                args.crop,
                args.batch_size,
                batches_per_epoch=n,
                resampled=True,
                shuffle_buffer=64,
                seed=1,
            )
            loaders[f"WebDataset, {fmt} shards"] = DataLoader(stream, batch_size=None, num_workers=args.workers)
        rates: dict[str, list[float]] = {name: [] for name in loaders}
        for _ in range(args.rounds):
            for name, loader in loaders.items():
                rates[name].append(rate(loader, args.batches, args.batch_size, warmup))
    base = rates[FOLDER]
    print(
        f"{len(files)} demo images, {args.crop}x{args.crop} crops, batch {args.batch_size}, "
        f"{args.workers} workers, {args.batches} timed batches, median of {args.rounds} rounds, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"shards on disk: png {sizes['png'] / 1e6:.1f} MB, raw {sizes['raw'] / 1e6:.1f} MB "
        f"(raw/png {sizes['raw'] / sizes['png']:.2f}x)"
    )
    for name, r in rates.items():
        ratio = statistics.median(a / b for a, b in zip(r, base))
        spread = ", ".join(f"{a / b:.2f}" for a, b in zip(r, base))
        print(f"{name:<28}{statistics.median(r):8.1f} images/s   ratio {ratio:5.2f}x   (rounds: {spread})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
