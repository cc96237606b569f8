"""Evaluation data: full images from a folder, padded for the model, names kept.

No random crop, no resizing: each image comes whole, replicate-padded on the bottom
and right to a multiple of the model's downsampling factor, with its original size so
results can be cropped back (``x_hat[..., :h, :w]``) and reported per image name.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from hdc_lightning.data.batches import EvalBatch
from hdc_lightning.data.images import CorruptImage, list_images, pad_multiple, read_rgb, to_float
from hdc_lightning.errors import ConfigError

log = logging.getLogger(__name__)

ErrorReport = Callable[[str, str], None]


def _first(files: list[Path], max_images: int | None) -> list[Path]:
    return files[:max_images] if max_images and max_images > 0 else files  # None / 0 / negative: all


def warn_unreadable(name: str, reason: str) -> None:
    log.warning("skipping unreadable image %s: %s", name, reason)


def iter_folder_images(
    folder: str | os.PathLike,
    recursive: bool = True,
    max_images: int | None = None,
    on_error: ErrorReport = warn_unreadable,
) -> Iterator[tuple[str, torch.Tensor]]:
    """Yield ``(name, image)`` for the images of ``folder`` in sorted order.

    ``name`` is the path relative to ``folder`` (``"kodim01.png"``, ``"sub/a.jpg"``);
    ``image`` is float32 ``[3, H, W]`` in [0, 1]. An unreadable file is passed to
    ``on_error(name, reason)`` and skipped. DataError when the folder is missing or
    holds no image file. ``max_images`` counts files (None or <= 0: all).
    """
    root = Path(folder).expanduser()
    files = list_images(root, recursive=recursive)
    for path in _first(files, max_images):
        name = path.relative_to(root).as_posix()
        try:
            image = read_rgb(path)
        except OSError as e:
            on_error(name, f"unreadable ({e.strerror or e})")
            continue
        except CorruptImage as e:
            on_error(name, str(e))
            continue
        yield name, to_float(image)


class FolderImages(IterableDataset):
    """:class:`EvalBatch` items (one image each) from a folder; split over loader workers."""

    def __init__(
        self, folder: str | os.PathLike, pad_multiple: int = 64, max_images: int | None = None, recursive: bool = True
    ):
        super().__init__()
        if pad_multiple < 1:
            raise ConfigError(f"data.val.pad_multiple must be >= 1 (got {pad_multiple})")
        self.folder, self.pad, self.recursive = Path(folder).expanduser(), pad_multiple, recursive
        self.files = _first(list_images(self.folder, recursive), max_images)  # a bad folder fails here

    def __len__(self) -> int:
        return len(self.files)

    def __iter__(self) -> Iterator[EvalBatch]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        for path in itertools.islice(self.files, worker, None, workers):
            name = path.relative_to(self.folder).as_posix()
            try:
                image = to_float(read_rgb(path))
            except (OSError, CorruptImage) as e:
                warn_unreadable(name, getattr(e, "strerror", None) or str(e))
                continue
            h, w = image.shape[-2:]
            yield EvalBatch(pad_multiple(image, self.pad)[None], torch.tensor([[h, w]], dtype=torch.long), [name])


class FolderDataModule:
    """The evaluation half: the same folder loader for validation, test and predict."""

    def __init__(
        self, folder: str | os.PathLike, pad_multiple: int = 64, max_images: int | None = None, num_workers: int = 0
    ):
        self.folder, self.pad_multiple, self.max_images = folder, pad_multiple, max_images
        self.num_workers = num_workers
        self.dataset = FolderImages(folder, pad_multiple, max_images)  # a bad folder fails here, early

    def _loader(self) -> DataLoader:
        # batch_size=None: images differ in size, each item already is a batch of one.
        return DataLoader(
            self.dataset, batch_size=None, num_workers=self.num_workers, pin_memory=torch.cuda.is_available()
        )

    def val_dataloader(self) -> DataLoader:
        return self._loader()

    def test_dataloader(self) -> DataLoader:
        return self._loader()

    def predict_dataloader(self) -> DataLoader:
        return self._loader()
