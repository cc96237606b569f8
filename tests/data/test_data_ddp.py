"""Two CPU processes (gloo): the data module takes rank and world size from the trainer,
ranks get different batches, and both run the same number of steps (no hang)."""

from __future__ import annotations

import json

import lightning as L
import pytest
import torch

from hdc_lightning.data import build_datamodule
from hdc_lightning.train import LightningData
from tests.helpers.datasets import sample_id


class Recorder(L.LightningModule):
    def __init__(self, out_dir: str):
        super().__init__()
        self.out_dir = out_dir
        self.w = torch.nn.Parameter(torch.zeros(()))
        self.ids: list[list[int]] = []

    def training_step(self, batch, batch_idx):
        self.ids.append([sample_id(img) for img in batch.images])
        return (batch.images.mean() - self.w) ** 2

    def on_train_end(self):
        with open(f"{self.out_dir}/rank{self.global_rank}.json", "w") as f:
            json.dump({"ids": self.ids, "rank": self.global_rank, "world": self.trainer.world_size}, f)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


@pytest.mark.slow
@pytest.mark.ddp
def test_two_process_ddp_exact_epochs(tagged_shards, tmp_path):
    # num_workers=0: under ddp_spawn each loader worker would be spawned too (a fresh
    # interpreter per worker and epoch); the rank x worker split is tested in test_data_stream.
    cfg = {
        "train": {
            "shards": tagged_shards,
            "crop": 32,
            "batch_size": 6,
            "batches_per_epoch": 2,
            "num_workers": 0,
            "resampled": False,
            "shuffle_buffer": 8,
        },
        "val": {"folder": None},
    }
    trainer = L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp_spawn",
        max_steps=4,
        max_epochs=-1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
    )
    trainer.fit(Recorder(str(tmp_path)), datamodule=LightningData(build_datamodule(cfg, seed=1)))
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2]
    assert [len(r["ids"]) for r in ranks] == [4, 4]  # two nominal epochs of 2 batches on each rank
    for epoch in (slice(0, 2), slice(2, 4)):  # all 24 samples exactly once per epoch across ranks
        seen = sorted(i for r in ranks for b in r["ids"][epoch] for i in b)
        assert seen == list(range(24))
