"""Training data: a WebDataset shard stream cut into a fixed nominal epoch.

Dataflow inside each DataLoader worker::

    shard URLs ──► resampled: ResampledShards (seed = run seed ⊕ rank ⊕ worker ⊕ epoch)
       │           exact:     split by rank, then by worker; passes over that slice
       ▼
    tar members ──► samples ──► decode ──► random crop (uint8) ──► shuffle buffer
                                  │ rgb8: raw pixels, no codec; png/jpg: libpng/libjpeg
                                  │ corrupt: skipped + counted
                                  ▼
    float [0,1], pad if small, h-flip ──► TrainBatch(images [B,3,c,c], skipped)

Every rank yields exactly ``batches_per_epoch`` batches per epoch (split over its
workers), whatever its shards hold, so DDP ranks never wait on each other. With
``resampled=False`` each worker walks its own shard slice in passes; when the epoch
is one pass long, every sample is seen exactly once per epoch across all ranks and
workers.
"""

from __future__ import annotations

import glob
import logging
import os
import random
import tarfile
import warnings
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlparse

import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from hdc_lightning.data.batches import TrainBatch
from hdc_lightning.data.config import TrainDataConfig
from hdc_lightning.data.images import RAW_EXT, CorruptImage, batch_views, decode_raw, decode_rgb, random_crop
from hdc_lightning.errors import ConfigError, DataError

log = logging.getLogger(__name__)

# Lightning warns that an IterableDataset's __len__ may be wrong with several workers;
# ShardStream divides each epoch between its workers, so its length is exact.
warnings.filterwarnings("ignore", message="Your `IterableDataset` has `__len__` defined", category=UserWarning)

# Payload extensions tried in this order; rgb8 (raw pixels) needs no codec.
IMAGE_KEYS = (RAW_EXT, "png", "jpg", "jpeg", "webp", "bmp", "ppm", "tif", "tiff")
_MAX_WARNINGS = 10  # per worker, then silence (the count still goes into the logs)


class ShardStreamError(DataError):
    """A DataError raised inside a loader worker.

    PyTorch re-raises worker exceptions in the main process as ``type(msg)`` with the
    worker's whole traceback as ``msg``; keep only the final one-line message.
    """

    def __init__(self, msg: str = ""):
        if "Original Traceback" in msg:
            msg = msg.rstrip().splitlines()[-1].split(": ", 1)[-1]
        super().__init__(msg)


def _is_remote(url: str) -> bool:
    return urlparse(url).scheme not in ("", "file")


def expand_shards(pattern: str, what: str = "data.train.shards") -> list[str]:
    """Expand a shard pattern to URLs; local files must exist.

    Brace ranges (``train-{000000..000099}.tar``), ``::``-joined lists and ``${WDS_X}``
    variables are expanded by webdataset; local entries may also be globs
    (``shards/*.tar``). ``pipe:``/``http:`` URLs are passed through unchecked.
    """
    from webdataset.shardlists import expand_urls

    try:
        urls = expand_urls(str(pattern))
    except (AssertionError, ValueError) as e:  # webdataset asserts on a missing WDS_ variable
        raise DataError(f"{what} {pattern!r}: {e}") from None
    out: list[str] = []
    missing: list[str] = []
    for url in urls:
        if _is_remote(url):
            out.append(url)
            continue
        path = os.path.expanduser(url[len("file:") :] if url.startswith("file:") else url)
        if any(c in path for c in "*?["):
            matches = sorted(p for p in glob.glob(path) if os.path.isfile(p))
            out += matches
            if not matches:
                missing.append(path)
        elif os.path.isfile(path):
            out.append(path)
        else:
            missing.append(path)
    if not out:
        raise DataError(f"{what} {pattern!r} matches no file")
    if missing:
        raise DataError(
            f"{what} {pattern!r}: {len(missing)} of {len(missing) + len(out)} shard(s) "
            f"do not exist (first: {missing[0]})"
        )
    return out


class _Skips:
    """Corrupt samples met by one worker; warns about the first few by name."""

    def __init__(self) -> None:
        self.total = 0
        self.pending = 0

    def add(self, where: str, reason: Any) -> None:
        self.total += 1
        self.pending += 1
        if self.total <= _MAX_WARNINGS:
            tail = " (further skips are only counted)" if self.total == _MAX_WARNINGS else ""
            log.warning("skipping corrupt sample %s: %s%s", where, str(reason).splitlines()[0][:200], tail)

    def take(self) -> int:
        n, self.pending = self.pending, 0
        return n


def read_shard(url: str, skips: _Skips) -> Iterator[dict]:
    """Samples (``{"__key__", "__url__", ext: bytes}``) of one tar shard, local or ``pipe:``/URL.

    Opening goes through webdataset's ``gopen``. A broken member (truncated data, bad
    header) ends the shard: the sample being read counts as one skip and the samples
    behind it in that shard are not reachable.
    """
    from webdataset.gopen import gopen
    from webdataset.tariterators import base_plus_ext

    try:
        stream = gopen(url)
    except Exception as e:  # missing file, failing pipe command, …
        skips.add(url, e)
        return
    error: BaseException | None = None
    current: dict | None = None
    key = "?"  # the member being read, named when it turns out broken
    try:
        with tarfile.open(fileobj=stream, mode="r|*") as tar:
            for info in tar:
                if not info.isreg():
                    continue
                key, ext = base_plus_ext(info.name)
                if key is None or key.rsplit("/", 1)[-1].startswith("__"):
                    continue  # metadata members
                if current is not None and current["__key__"] != key:
                    yield current  # complete before the next member is read
                    current = None
                # read(), not readinto(bytearray(info.size)): a lying header must not make us
                # allocate its declared size before the data runs out
                data = tar.extractfile(info).read()
                if current is None:
                    current = {"__key__": key, "__url__": url}
                current[ext.lower()] = data
        if current is not None:
            yield current
    except (tarfile.TarError, OSError, EOFError, ValueError) as e:
        error = e
    finally:
        try:
            stream.close()  # a pipe: stream raises here when its command failed
        except Exception as e:
            error = error or e
    if error is not None:
        skips.add(f"{url} (member {key})", error)


def decode_sample(sample: dict) -> torch.Tensor:
    """The image of a sample as uint8 ``[3, H, W]``; CorruptImage when there is none."""
    for ext in IMAGE_KEYS:
        if ext in sample:
            return decode_raw(sample[ext]) if ext == RAW_EXT else decode_rgb(sample[ext])
    keys = sorted(k for k in sample if not k.startswith("__"))
    raise CorruptImage(f"no image member (has {keys})")


class ShardStream(IterableDataset):
    """An IterableDataset of :class:`TrainBatch` read from shard ``urls``.

    ``rank``/``world_size`` are given explicitly (the DataModule takes them from the
    trainer), so the split and the seeds do not depend on environment variables and
    ranks can be simulated in tests.
    """

    def __init__(
        self,
        urls: list[str],
        crop: int,
        batch_size: int,
        batches_per_epoch: int,
        resampled: bool = True,
        shuffle_buffer: int = 64,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        crops_per_image: int = 1,
    ):
        super().__init__()
        self.urls = list(urls)
        self.crop, self.batch_size, self.batches_per_epoch = crop, batch_size, batches_per_epoch
        self.resampled, self.shuffle_buffer = resampled, shuffle_buffer
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.crops_per_image = crops_per_image
        self._main_epochs = 0  # epochs run without worker processes

    def __len__(self) -> int:
        return self.batches_per_epoch

    def shards_for(self, worker: int, num_workers: int) -> list[str]:
        """The exact-mode slice: split by node, then by worker (like wds.split_by_node/worker)."""
        return self.urls[self.rank :: self.world_size][worker::num_workers]

    def __iter__(self) -> Iterator[TrainBatch]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        quota = self.batches_per_epoch // workers + (worker < self.batches_per_epoch % workers)
        if quota == 0:
            return
        # The DataLoader draws a fresh worker seed each epoch (from the seeded torch RNG);
        # rank and worker are mixed in so no two ranks or workers share a stream.
        if info is None:
            epoch_seed, self._main_epochs = self._main_epochs, self._main_epochs + 1
        else:
            epoch_seed = info.seed
        rng = random.Random(hash((self.seed, self.rank, worker, epoch_seed)))
        skips = _Skips()
        crops = self._resampled_crops(rng, skips) if self.resampled else self._pass_crops(worker, workers, rng, skips)
        for _ in range(quota):
            views = batch_views([next(crops) for _ in range(self.batch_size)], self.crop, rng, shared=info is not None)
            yield TrainBatch(views, torch.tensor(skips.take(), dtype=torch.long))

    # ---- sample streams (uint8 crops) -----------------------------------------------
    def _crops(self, urls: Iterable[str], rng: random.Random, skips: _Skips, max_dry: int) -> Iterator[torch.Tensor]:
        dry = 0  # shards in a row that gave no image: stop instead of spinning forever
        for url in urls:
            got = 0
            for sample in read_shard(url, skips):
                try:
                    image = decode_sample(sample)
                except CorruptImage as e:
                    skips.add(f"{url} (member {sample['__key__']})", e)
                    continue
                got += 1
                for _ in range(self.crops_per_image):
                    # clone: the crop must not keep the whole decoded image alive in the buffer
                    yield random_crop(image, self.crop, rng).clone()
            dry = 0 if got else dry + 1
            if dry >= max_dry:
                raise ShardStreamError(f"no readable image in {dry} shard(s) in a row (last: {url})")

    def _shuffled(self, crops: Iterator[torch.Tensor], rng: random.Random) -> Iterator[torch.Tensor]:
        if self.shuffle_buffer <= 1:
            return crops
        from webdataset.filters import shuffle

        return iter(shuffle(self.shuffle_buffer, self.shuffle_buffer, rng=rng)(crops))

    def _resampled_crops(self, rng: random.Random, skips: _Skips) -> Iterator[torch.Tensor]:
        from webdataset.shardlists import ResampledShards

        shards = ResampledShards(self.urls, seed=rng.randrange(2**31), worker_seed=lambda: 0, deterministic=True)
        urls = (d["url"] for d in shards)
        return self._shuffled(self._crops(urls, rng, skips, max_dry=max(20, 4 * len(self.urls))), rng)

    def _pass_crops(self, worker: int, workers: int, rng: random.Random, skips: _Skips) -> Iterator[torch.Tensor]:
        mine = self.shards_for(worker, workers)
        if not mine:
            raise ShardStreamError(
                f"{len(self.urls)} shard(s) cannot be split over {self.world_size} rank(s) x {workers} worker(s); "
                "write more shards or set data.train.resampled=true"
            )
        while True:  # one pass per loop; the shuffle buffer drains at the end of a pass
            order = list(mine)
            rng.shuffle(order)
            n = 0
            for crop in self._shuffled(self._crops(order, rng, skips, max_dry=len(order) + 1), rng):
                n += 1
                yield crop
            if n == 0:
                raise ShardStreamError(f"no readable image in shard(s) {', '.join(mine[:3])}")


def check_train_config(cfg: TrainDataConfig) -> None:
    for key in ("crop", "batch_size", "batches_per_epoch", "crops_per_image"):
        if int(getattr(cfg, key)) < 1:
            raise ConfigError(f"data.train.{key} must be >= 1 (got {getattr(cfg, key)})")
    if cfg.num_workers < 0 or cfg.shuffle_buffer < 0:
        raise ConfigError("data.train.num_workers and data.train.shuffle_buffer must be >= 0")


class ShardDataModule:
    """The training half: :class:`ShardStream` batches for ``train_dataloader``.

    ``rank``/``world_size`` given here win over those given to :meth:`setup` (where the
    trainer's adapter, :class:`hdc_lightning.train.LightningData`, passes its own);
    give them here to simulate a rank of a multi-process run.
    """

    def __init__(self, cfg: TrainDataConfig, seed: int = 0, rank: int | None = None, world_size: int | None = None):
        check_train_config(cfg)
        self.cfg, self.seed = cfg, seed
        self.rank, self.world_size = rank, world_size
        self.urls = expand_shards(cfg.shards)  # fail before any training starts
        self.dataset: ShardStream | None = None

    def _rank_world(self, rank: int | None, world: int | None) -> tuple[int, int]:
        rank = self.rank if self.rank is not None else (rank if rank is not None else 0)
        world = self.world_size if self.world_size is not None else (world if world is not None else 1)
        if not 0 <= rank < world:
            raise ConfigError(f"rank {rank} is outside world size {world}")
        return rank, world

    def setup(self, stage: str | None = None, rank: int | None = None, world_size: int | None = None) -> None:
        if self.dataset is not None:
            return
        rank, world = self._rank_world(rank, world_size)
        urls = self.urls
        workers = max(1, self.cfg.num_workers)
        if not self.cfg.resampled and len(urls) < world * workers:
            raise DataError(
                f"data.train.shards {self.cfg.shards!r}: {len(urls)} shard(s) cannot be split over {world} rank(s) "
                f"x {workers} worker(s) with data.train.resampled=false; write more shards or resample"
            )
        c = self.cfg
        self.dataset = ShardStream(
            urls,
            c.crop,
            c.batch_size,
            c.batches_per_epoch,
            c.resampled,
            c.shuffle_buffer,
            seed=self.seed,
            rank=rank,
            world_size=world,
            crops_per_image=c.crops_per_image,
        )

    def train_dataloader(self) -> DataLoader:
        if self.dataset is None:
            self.setup("fit")
        n = self.cfg.num_workers
        return DataLoader(
            self.dataset,
            batch_size=None,  # the stream yields whole batches
            num_workers=n,
            pin_memory=torch.cuda.is_available(),
            prefetch_factor=2 if n > 0 else None,
            persistent_workers=False,  # fresh workers draw fresh epoch seeds
        )
