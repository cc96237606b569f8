"""Images/s of the WebDataset training loader vs a plain folder-of-PNGs Dataset.

Both read the same demo images (the folder holds the very bytes stored in the
shards), take 256x256 random crops with a random flip, batch 16 and use 2 worker
processes. The WebDataset loader runs twice: with one crop per decoded image (the
same work as the folder loader) and with ``crops_per_image=2`` (each decode feeds
two training views). The loaders run in turn within each round, the ratio is taken
per round, and the medians over rounds are printed (robust to a busy machine).

    python benchmarks/data_loader.py [--batches 60 --rounds 3 --demo data/demo]

Builds the demo data first if it is missing (``hdc demo-data``).
"""

from __future__ import annotations

import argparse
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
from hdc_lightning.data.webdataset import ShardStream, _Skips, expand_shards, read_shard  # noqa: E402


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
    files = []
    for url in urls:
        for sample in read_shard(url, _Skips()):
            path = out / f"{sample['__key__']}.png"
            path.write_bytes(sample["png"])
            files.append(path)
    return files


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
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)

    demo = Path(args.demo)
    if not (demo / "train-000003.tar").exists():
        print(build_demo_data(demo).summary())
    urls = expand_shards(str(demo / "train-{000000..000003}.tar"))
    warmup = 2 * args.workers + 1  # prefetch_factor (2) batches per worker, plus the first
    n = args.batches + warmup
    with tempfile.TemporaryDirectory() as tmp:
        files = export_pngs(urls, Path(tmp))
        loaders = {
            "folder of PNGs (PIL)": DataLoader(
                PngFolder(files, args.crop), batch_size=args.batch_size, num_workers=args.workers,
                sampler=RandomSampler(files, replacement=True, num_samples=n * args.batch_size)),
        }
        for k in (1, 2):
            stream = ShardStream(urls, args.crop, args.batch_size, batches_per_epoch=n, resampled=True,
                                 shuffle_buffer=64, seed=k, crops_per_image=k)
            loaders[f"WebDataset, {k} crop/decode"] = DataLoader(stream, batch_size=None, num_workers=args.workers)
        rates: dict[str, list[float]] = {name: [] for name in loaders}
        for _ in range(args.rounds):
            for name, loader in loaders.items():
                rates[name].append(rate(loader, args.batches, args.batch_size, warmup))
    base = rates["folder of PNGs (PIL)"]
    print(f"{len(files)} demo images, {args.crop}x{args.crop} crops, batch {args.batch_size}, "
          f"{args.workers} workers, {args.batches} timed batches, median of {args.rounds} rounds, "
          f"{os.cpu_count()} CPUs")
    for name, r in rates.items():
        ratio = statistics.median(a / b for a, b in zip(r, base))
        print(f"{name:<30}{statistics.median(r):8.1f} images/s   ratio {ratio:5.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
