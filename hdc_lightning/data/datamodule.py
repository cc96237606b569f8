"""The data a training run uses: shards for training, a folder for validation.

Plain classes with Lightning's DataModule method names (``setup``, ``train_dataloader``,
``val_dataloader``); the trainer sees them through :class:`hdc_lightning.train.LightningData`,
so this package never imports Lightning.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from hdc_lightning.data.config import DataConfig, TrainDataConfig, ValDataConfig
from hdc_lightning.data.folder import FolderDataModule
from hdc_lightning.data.webdataset import ShardDataModule
from hdc_lightning.errors import ConfigError


def _section(cls: type, values: Mapping[str, Any] | None, where: str) -> Any:
    values = dict(values or {})
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown key (known: {', '.join(sorted(known))})")
    return cls(**values)


def data_config(data_cfg: Mapping[str, Any] | DataConfig | None) -> DataConfig:
    """A :class:`DataConfig` from the resolved ``data:`` section (a plain dict)."""
    if isinstance(data_cfg, DataConfig):
        return data_cfg
    if hasattr(data_cfg, "_metadata"):  # an OmegaConf DictConfig
        from omegaconf import OmegaConf

        data_cfg = OmegaConf.to_container(data_cfg, resolve=True)
    d = dict(data_cfg or {})
    extra = sorted(set(d) - {"train", "val"})
    if extra:
        raise ConfigError(f"data.{extra[0]}: unknown key (known: train, val)")
    return DataConfig(
        _section(TrainDataConfig, d.get("train"), "data.train"), _section(ValDataConfig, d.get("val"), "data.val")
    )


class HDCDataModule:
    """``train_dataloader`` streams shards (:class:`ShardDataModule`), ``val_dataloader``
    reads ``data.val.folder`` (:class:`FolderDataModule`); no validation when it is null."""

    def __init__(self, cfg: DataConfig, seed: int = 0, rank: int | None = None, world_size: int | None = None):
        self.cfg = cfg
        self.train_dm = ShardDataModule(cfg.train, seed=seed, rank=rank, world_size=world_size)
        v = cfg.val
        self.val_dm = FolderDataModule(v.folder, v.pad_multiple, v.max_images, v.num_workers) if v.folder else None

    def setup(self, stage: str | None = None, rank: int | None = None, world_size: int | None = None) -> None:
        """``rank``/``world_size``: the trainer's (see ShardDataModule for which win)."""
        if stage in (None, "fit"):
            self.train_dm.setup(stage, rank, world_size)

    def train_dataloader(self):
        return self.train_dm.train_dataloader()

    def val_dataloader(self):
        return self.val_dm.val_dataloader() if self.val_dm is not None else []

    def test_dataloader(self):
        return self.val_dm.test_dataloader() if self.val_dm is not None else []


def build_datamodule(
    data_cfg: Mapping[str, Any] | DataConfig, seed: int = 0, rank: int | None = None, world_size: int | None = None
) -> HDCDataModule:
    """The run's DataModule from the resolved ``data:`` config.

    ``rank``/``world_size`` default to those given to ``setup()`` (the trainer's); give
    them only to simulate one rank of a multi-process run.
    """
    return HDCDataModule(data_config(data_cfg), seed=seed, rank=rank, world_size=world_size)
