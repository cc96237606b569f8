"""``fit(cfg)``: the one pure function that trains a phase from a resolved config.

The CLI (``hdc fit``) and the staged pipeline both call it; it builds the phase from the
registry, the DataModule from ``data:``, and a Trainer from ``trainer:``, so the same
config runs on one CPU, 2-process CPU DDP or N GPUs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger

from hdc_lightning import registry, rundir
from hdc_lightning.callbacks import AtomicCheckpointIO, LastCheckpoint, RDPFigureCallback
from hdc_lightning.config.load import to_yaml
from hdc_lightning.config.values import check_values
from hdc_lightning.errors import CheckpointError, ConfigError, HDCError, Preempted


@dataclass(frozen=True)
class FitResult:
    run_dir: Path
    last_ckpt: Path
    global_step: int
    metrics: dict[str, float]


def build_phase(cfg: dict) -> L.LightningModule:
    return registry.get("phase", cfg["phase"]["name"]).factory(cfg)


class LightningData(L.LightningDataModule):
    """The trainer's view of a plain data module (:mod:`hdc_lightning.data` needs no Lightning):
    the trainer's rank and world size reach ``setup`` here."""

    def __init__(self, data: Any):
        super().__init__()
        self.data = data

    def setup(self, stage: str | None = None) -> None:
        self.data.setup(stage, self.trainer.global_rank, self.trainer.world_size)

    def train_dataloader(self):
        return self.data.train_dataloader()

    def val_dataloader(self):
        return self.data.val_dataloader()


def build_trainer(cfg: dict, run_dir: Path, extra_callbacks: list[L.Callback] | None = None) -> L.Trainer:
    t = dict(cfg["trainer"])
    logger = TensorBoardLogger(save_dir=str(run_dir), name="", version="tb", default_hp_metric=False)
    callbacks: list[L.Callback] = [LastCheckpoint(rundir.last_ckpt_of(run_dir), cfg["run"]["ckpt_every_n_steps"])]
    extra_callbacks = list(extra_callbacks or [])
    if cfg["run"]["rdp_figure"]:
        if not any(isinstance(c, RDPFigureCallback) for c in extra_callbacks):  # a caller's own one wins
            callbacks.append(RDPFigureCallback())
    callbacks += extra_callbacks
    return L.Trainer(
        accelerator=t["accelerator"],
        devices=t["devices"],
        num_nodes=t["num_nodes"],
        strategy=t["strategy"],
        precision=t["precision"],
        max_steps=t["max_steps"],
        max_epochs=-1,
        # None: val_check_interval counts batches across epochs (the WebDataset epoch is nominal).
        check_val_every_n_epoch=None,
        val_check_interval=t["val_check_interval"],
        limit_val_batches=t["limit_val_batches"],
        num_sanity_val_steps=0,
        log_every_n_steps=t["log_every_n_steps"],
        gradient_clip_val=t["gradient_clip_val"],
        enable_progress_bar=t["enable_progress_bar"],
        deterministic=t["deterministic"],
        default_root_dir=str(run_dir),
        logger=logger,
        callbacks=callbacks,
        enable_checkpointing=False,  # LastCheckpoint owns the cadence and the atomic write
        plugins=[AtomicCheckpointIO()],
    )


def _check_final_checkpoint(path: Path) -> None:
    """``done.json`` promises a finished stage: only when its checkpoint exists and loads."""
    from hdc_lightning.checkpoints import safe_load

    try:
        safe_load(path)
    except HDCError as e:
        raise CheckpointError(
            f"training ended without a loadable final checkpoint, done.json not written ({e})"
        ) from None


def fit(cfg: dict[str, Any], extra_callbacks: list[L.Callback] | None = None) -> FitResult:
    """Train ``cfg['phase']`` per ``cfg``; resumes or refuses per ``run.resume/overwrite``."""
    from hdc_lightning.data import build_datamodule

    run = cfg["run"]
    if run["resume"] and run["init_from"]:
        raise ConfigError(
            "run.resume and run.init_from cannot both be set: resume restores this stage's full state, "
            "init_from loads weights from other stages"
        )
    check_values(cfg)  # also done by load_config; fit(cfg) may be given a dict directly
    # Data and phase first: a bad shard pattern or missing weights fail before a run directory exists.
    L.seed_everything(run["seed"], workers=True, verbose=False)
    datamodule = LightningData(build_datamodule(cfg["data"], seed=run["seed"]))
    phase = build_phase(cfg)
    run_dir, resume_from = rundir.prepare(cfg)
    if rundir.is_launcher_rank_zero():
        rundir.write_metadata(run_dir, to_yaml(cfg))
    if run["init_from"]:
        phase.init_from(run["init_from"])
    if run["freeze"]:
        phase.freeze(list(run["freeze"]))
    trainer = build_trainer(cfg, run_dir, extra_callbacks)
    try:
        trainer.fit(phase, datamodule=datamodule, ckpt_path=str(resume_from) if resume_from else None)
    except SystemExit:  # Lightning ends a SIGTERM'd fit with SystemExit(None), i.e. status 0
        if not trainer.received_sigterm:
            raise
        last = rundir.last_ckpt_of(run_dir)
        saved = f"{last} holds step {trainer.global_step}" if last.is_file() else "no checkpoint was written yet"
        raise Preempted(
            f"{run_dir}: stopped by SIGTERM; {saved}; rerun the command with run.resume=true to continue"
        ) from None
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if getattr(v, "numel", lambda: 1)() == 1}
    if trainer.is_global_zero and not trainer.interrupted:
        _check_final_checkpoint(rundir.last_ckpt_of(run_dir))
        rundir.mark_done(run_dir, trainer.global_step, metrics)
    return FitResult(run_dir, rundir.last_ckpt_of(run_dir), trainer.global_step, metrics)
