"""build_datamodule: config checks, batch types, and a short Lightning fit/validate run."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from hdc_lightning.data import EvalBatch, TrainBatch, build_datamodule
from hdc_lightning.errors import ConfigError, DataError
from hdc_lightning.train import LightningData
from tests.helpers.images import save_image


def data_cfg(shards: str, val: str | None, **train) -> dict:
    return {
        "train": {
            "shards": shards,
            "crop": 24,
            "batch_size": 2,
            "batches_per_epoch": 3,
            "num_workers": 0,
            "shuffle_buffer": 4,
            **train,
        },
        "val": {"folder": val, "max_images": 2, "pad_multiple": 16},
    }


class Probe(L.LightningModule):
    """Checks what the phases receive; trains one scalar so the optimiser has work."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))
        self.seen_train, self.seen_val = [], []

    def training_step(self, batch, batch_idx):
        assert isinstance(batch, TrainBatch) and batch.images.shape == (2, 3, 24, 24)
        assert batch.images.dtype == torch.float32 and 0 <= batch.images.min() and batch.images.max() <= 1
        self.seen_train.append(self.current_epoch)
        return (batch.images.mean() - self.w) ** 2

    def validation_step(self, batch, batch_idx):
        assert isinstance(batch, EvalBatch) and batch.images.shape[-1] % 16 == 0
        h, w = batch.sizes[0].tolist()
        assert batch.images[..., :h, :w].shape[-2:] == (h, w)
        self.seen_val.append(batch.names[0])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_lightning_fit_uses_nominal_epochs_and_named_val_images(tagged_shards, tmp_path):
    save_image(tmp_path / "val" / "x.png", 20, 30, seed=1)
    save_image(tmp_path / "val" / "y.png", 17, 16, seed=2)
    dm = build_datamodule(data_cfg(tagged_shards, str(tmp_path / "val")), seed=3)
    probe = Probe()
    trainer = L.Trainer(
        max_steps=5,
        max_epochs=-1,
        val_check_interval=2,
        check_val_every_n_epoch=None,
        limit_val_batches=2,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        default_root_dir=str(tmp_path),
    )
    trainer.fit(probe, datamodule=LightningData(dm))
    assert trainer.num_training_batches == 3  # the nominal epoch
    assert probe.seen_train == [0, 0, 0, 1, 1]
    assert probe.seen_val[:2] == ["x.png", "y.png"]


def test_no_val_folder_means_no_val_loader(tagged_shards):
    dm = build_datamodule(data_cfg(tagged_shards, None), seed=0)
    dm.setup("fit")
    assert dm.val_dataloader() == []
    batch = next(iter(dm.train_dataloader()))
    assert isinstance(batch, TrainBatch) and batch.skipped.dtype == torch.long


@pytest.mark.parametrize(
    "cfg, error, message",
    [
        ({"train": {"shardz": "x"}}, ConfigError, "data.train.shardz: unknown key"),
        ({"tran": {}}, ConfigError, "data.tran: unknown key"),
        ({"train": {"shards": "/nowhere/t-{0..3}.tar"}}, DataError, "'/nowhere/t-{0..3}.tar' matches no file"),
        ({"train": {"crop": 0}}, ConfigError, "data.train.crop must be >= 1"),
    ],
)
def test_bad_config_fails_at_build_time(cfg, error, message, tagged_shards):
    cfg = {
        "train": {"shards": tagged_shards, **cfg.get("train", {})},
        **{k: v for k, v in cfg.items() if k != "train"},
        "val": {"folder": None},
    }
    with pytest.raises(error) as err:
        build_datamodule(cfg, seed=0)
    assert message in str(err.value) and "\n" not in str(err.value)
