"""``last.ckpt``: when it is written (:class:`LastCheckpoint`) and how (:class:`AtomicCheckpointIO`)."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.utilities import rank_zero_warn

from hdc_lightning.checkpoints import atomic_torch_save, safe_load


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning CheckpointIO: temp file + rename on save, ``weights_only=True`` on load."""

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        atomic_torch_save(checkpoint, path)

    def load_checkpoint(self, path, map_location=None, weights_only=None) -> dict:
        return safe_load(path, map_location=map_location or "cpu")


class LastCheckpoint(L.Callback):
    """Write ``last.ckpt`` every ``every_n_steps`` optimisation steps and when training ends.

    Writes go through :class:`AtomicCheckpointIO` (temp file +
    rename), so a kill at any moment leaves the previous complete checkpoint.
    """

    def __init__(self, path: str | Path, every_n_steps: int):
        self.path = Path(path)
        self.every_n_steps = max(1, int(every_n_steps))
        self._saved_at = -1

    def _save(self, trainer: L.Trainer) -> None:
        if trainer.global_step == self._saved_at:
            return
        # An update that made weights inf/NaN (the loss was finite, its gradient not) must
        # not replace the last good checkpoint; every rank holds the same weights, so all
        # ranks skip together.
        if not all(bool(torch.isfinite(p).all()) for p in trainer.lightning_module.parameters()):
            rank_zero_warn(f"step {trainer.global_step}: weights are not finite, {self.path} is left as it was")
            return
        trainer.save_checkpoint(self.path)
        self._saved_at = trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step > 0 and trainer.global_step % self.every_n_steps == 0:
            self._save(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        self._save(trainer)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        # Ctrl-C / SIGTERM / a stop by the non-finite guard: keep the progress made since
        # the last cadence point. Under DDP the other ranks may be gone, so only single-process.
        if trainer.world_size == 1 and trainer.global_step > 0:
            self._save(trainer)
