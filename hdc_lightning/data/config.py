"""Typed schemas of the ``data:`` config section."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TrainDataConfig:
    # WebDataset URL pattern with brace expansion: local paths or `pipe:` commands.
    shards: str = "data/demo/train-{000000..000003}.tar"
    crop: int = 256
    batch_size: int = 8
    num_workers: int = 2
    # Nominal epoch: batches each rank yields per epoch (identical on every rank: no DDP hang).
    batches_per_epoch: int = 100
    # True: infinite resampling of shards with per-rank/per-worker seeds (training).
    # False: every sample exactly once per epoch, split by node then by worker.
    resampled: bool = True
    shuffle_buffer: int = 64
    # Random crops taken from each decoded image: >1 spreads the decode cost of large
    # photos (DIV2K, OpenImages) over several training views.
    crops_per_image: int = 1


@dataclass
class ValDataConfig:
    # A folder of PNG/JPEG images (recursive); full images, padded to `pad_multiple`.
    folder: str | None = "data/demo/val"
    max_images: int = 4
    pad_multiple: int = 64
    num_workers: int = 0


@dataclass
class DataConfig:
    train: TrainDataConfig = field(default_factory=TrainDataConfig)
    val: ValDataConfig = field(default_factory=ValDataConfig)
