"""An in-memory DataModule of smooth colour fields and a tiny config for the VQ phase tests.

Run as a module from the repository root (``python -m tests.helpers.vq_toy ROOT
[OVERRIDE ...]``) it trains the ``vq`` phase for two batches under 2-process CPU DDP
(Lightning re-launches the same module for rank 1) and writes each rank's checksum of
parameters and buffers and its step to ``ROOT/rank<r>.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader

from hdc_lightning.data.batches import EvalBatch
from hdc_lightning.train import build_phase, build_trainer
from tests.helpers.configs import tiny_config
from tests.helpers.images import synthetic_image


class ToyData(L.LightningDataModule):
    """Training batches ``(images, skipped)``; one validation image cropped from a padded one."""

    def __init__(self, n: int = 16, size: int = 64, batch_size: int = 2):
        super().__init__()
        self.images, self.batch_size = synthetic_image(size, size, style="fields", n=n), batch_size

    def train_dataloader(self) -> DataLoader:
        items = [(img, torch.tensor(0)) for img in self.images]
        return DataLoader(items, batch_size=self.batch_size, shuffle=True, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        img = self.images[0].clone()
        img[:, 60:, :] = img[:, 59:60, :]  # "padding" below row 60 and right of column 56
        img[:, :, 56:] = img[:, :, 55:56]
        return DataLoader([EvalBatch(img, torch.tensor([60, 56]), "toy0")], batch_size=1)


def toy_cfg(root: str | Path, *overrides: str) -> dict:
    """``experiments/vq/tiny.yaml`` for :class:`ToyData`: 2 steps, a smaller model, then ``overrides``."""
    return tiny_config(
        "vq",
        root,
        None,
        *overrides,
        name="toy",
        every=1000,
        max_steps=2,
        **{
            "trainer.devices": 1,
            "trainer.val_check_interval": 2,
            "trainer.limit_val_batches": 1,
            "phase.disc_start": 1,
            "phase.image_every": 1,
            "model.args.ch": 8,
            "model.args.codebook_size": 64,
            "model.args.code_dim": 16,
        },
    )


def run(cfg: dict, ckpt_path: str | None = None, **data_kw) -> tuple[L.Trainer, L.LightningModule]:
    L.seed_everything(cfg["run"]["seed"], workers=True, verbose=False)
    phase = build_phase(cfg)
    trainer = build_trainer(cfg, Path(cfg["run"]["root"]) / cfg["run"]["name"])
    trainer.fit(phase, datamodule=ToyData(**data_kw), ckpt_path=ckpt_path)
    return trainer, phase


def main(root: str, *overrides: str) -> None:
    cfg = toy_cfg(root, "trainer.devices=2", "trainer.strategy=ddp", "model.args.restart_after=1", *overrides)
    trainer, phase = run(cfg)
    tensors = [*phase.parameters(), *(b for b in phase.buffers() if b.is_floating_point())]
    checksum = float(sum(t.detach().double().sum() for t in tensors))
    out = {"step": trainer.global_step, "checksum": checksum, "world": trainer.world_size}
    (Path(root) / f"rank{trainer.global_rank}.json").write_text(json.dumps(out))


if __name__ == "__main__":
    main(*sys.argv[1:])
