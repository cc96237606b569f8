"""Run by test_ddp.py as a script: `hdc fit` of the tiny LIC phase with a batch-digest probe.

Lightning's DDP launcher re-executes this script for rank 1, so it must behave the same on
every rank: load the config from argv, add the probe, call fit().
"""

import hashlib
import sys
from pathlib import Path

import lightning as L

from hdc_lightning.config import load_config
from hdc_lightning.train import fit


class BatchDigests(L.Callback):
    """Write a digest of every training batch each rank sees to digests-rank<R>.txt."""

    def __init__(self, out: Path):
        self.out = out

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        digest = hashlib.sha1(batch[0].detach().cpu().numpy().tobytes()).hexdigest()
        with open(self.out / f"digests-rank{trainer.global_rank}.txt", "a") as f:
            f.write(f"{trainer.global_step} {digest}\n")


if __name__ == "__main__":
    config, out, *overrides = sys.argv[1:]
    Path(out).mkdir(parents=True, exist_ok=True)
    fit(load_config(config, overrides), extra_callbacks=[BatchDigests(Path(out))])
