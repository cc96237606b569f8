"""Trainer callbacks shared by every phase."""

from __future__ import annotations

from pathlib import Path

import lightning as L


class LastCheckpoint(L.Callback):
    """Write ``last.ckpt`` every ``every_n_steps`` optimisation steps and when training ends.

    Writes go through :class:`~hdc_lightning.checkpoints.AtomicCheckpointIO` (temp file +
    rename), so a kill at any moment leaves the previous complete checkpoint.
    """

    def __init__(self, dirpath: str | Path, every_n_steps: int):
        self.path = Path(dirpath) / "last.ckpt"
        self.every_n_steps = max(1, int(every_n_steps))
        self._saved_at = -1

    def _save(self, trainer: L.Trainer) -> None:
        if trainer.global_step != self._saved_at:
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
