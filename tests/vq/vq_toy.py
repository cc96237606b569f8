"""Toy images, an in-memory DataModule and a tiny config for the VQ phase tests.

Run as a script (``python tests/vq/vq_toy.py ROOT``) it trains the ``vq`` phase for two
batches under 2-process CPU DDP (Lightning re-launches this file for rank 1) and writes
each rank's parameter checksum and step to ``ROOT/rank<r>.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from hdc_lightning.config import load_config  # noqa: E402
from hdc_lightning.data.batches import EvalBatch  # noqa: E402
from hdc_lightning.train import build_phase, build_trainer  # noqa: E402


def toy_images(n: int, size: int = 64, seed: int = 0) -> torch.Tensor:
    """Smooth random colour fields in [0, 1] (bilinear upsampling of 4x4 noise)."""
    g = torch.Generator().manual_seed(seed)
    return F.interpolate(torch.rand(n, 3, 4, 4, generator=g), size=(size, size), mode="bilinear", align_corners=False)


class ToyData(L.LightningDataModule):
    """Training batches ``(images, skipped)``; one validation image cropped from a padded one."""

    def __init__(self, n: int = 16, size: int = 64, batch_size: int = 2):
        super().__init__()
        self.images, self.batch_size = toy_images(n, size), batch_size

    def train_dataloader(self) -> DataLoader:
        items = [(img, torch.tensor(0)) for img in self.images]
        return DataLoader(items, batch_size=self.batch_size, shuffle=True, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        img = self.images[0].clone()
        img[:, 60:, :] = img[:, 59:60, :]  # "padding" below row 60 and right of column 56
        img[:, :, 56:] = img[:, :, 55:56]
        return DataLoader([EvalBatch(img, torch.tensor([60, 56]), "toy0")], batch_size=1)


def toy_cfg(root: str | Path, *overrides: str) -> dict:
    base = [
        f"run.root={root}", "run.name=toy", "run.ckpt_every_n_steps=1000",
        "trainer.accelerator=cpu", "trainer.devices=1", "trainer.enable_progress_bar=false",
        "trainer.max_steps=2", "trainer.val_check_interval=2", "trainer.limit_val_batches=1",
        "trainer.log_every_n_steps=1", "phase.disc_start=1", "phase.image_every=1",
        "model.args.ch=8", "model.args.codebook_size=64", "model.args.code_dim=16",
    ]
    return load_config(REPO / "experiments" / "vq" / "tiny.yaml", base + list(overrides))


def run(cfg: dict, ckpt_path: str | None = None, **data_kw) -> tuple[L.Trainer, L.LightningModule]:
    L.seed_everything(cfg["run"]["seed"], workers=True, verbose=False)
    phase = build_phase(cfg)
    trainer = build_trainer(cfg, Path(cfg["run"]["root"]) / cfg["run"]["name"])
    trainer.fit(phase, datamodule=ToyData(**data_kw), ckpt_path=ckpt_path)
    return trainer, phase


def main(root: str) -> None:
    cfg = toy_cfg(root, "trainer.devices=2", "trainer.strategy=ddp", "model.args.restart_after=1")
    trainer, phase = run(cfg)
    checksum = float(sum(p.detach().double().sum() for p in phase.parameters()))
    out = {"step": trainer.global_step, "checksum": checksum, "world": trainer.world_size}
    (Path(root) / f"rank{trainer.global_rank}.json").write_text(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
