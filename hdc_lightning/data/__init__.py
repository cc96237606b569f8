"""Data: shard writing, the WebDataset training stream, the evaluation folder, demo data.

Importing this package stays light (the config schema imports it); the data modules
load on first use. Nothing here imports Lightning (the trainer wraps the data module in
:class:`hdc_lightning.train.LightningData`).

    build_datamodule(cfg["data"], seed)   → data module (train: shards, val: folder)
    TrainBatch(images, skipped)           → training batches
    EvalBatch(images, sizes, names)       → evaluation batches (one padded image)
    iter_folder_images(folder)            → (name, [3,H,W] float) for `hdc eval`
    write_shards(src, out_dir, …)         → `hdc shards`
"""

from __future__ import annotations

from typing import Any

from hdc_lightning.data.batches import EvalBatch, TrainBatch
from hdc_lightning.data.config import DataConfig, TrainDataConfig, ValDataConfig

_LAZY = {
    "build_datamodule": "hdc_lightning.data.datamodule",
    "data_config": "hdc_lightning.data.datamodule",
    "HDCDataModule": "hdc_lightning.data.datamodule",
    "ShardDataModule": "hdc_lightning.data.webdataset",
    "ShardStream": "hdc_lightning.data.webdataset",
    "expand_shards": "hdc_lightning.data.webdataset",
    "FolderDataModule": "hdc_lightning.data.folder",
    "FolderImages": "hdc_lightning.data.folder",
    "iter_folder_images": "hdc_lightning.data.folder",
    "write_shards": "hdc_lightning.data.shards",
    "ShardReport": "hdc_lightning.data.shards",
    "build_demo_data": "hdc_lightning.data.demo",
}

__all__ = ["EvalBatch", "TrainBatch", "DataConfig", "TrainDataConfig", "ValDataConfig", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hdc_lightning.data' has no attribute {name!r}")
