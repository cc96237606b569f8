"""Typed schemas (dataclasses) of a training config; OmegaConf validates against them.

The ``phase:`` section is validated by the registered phase's own ``Config`` dataclass,
the model's ``args`` by its constructor signature (see :mod:`hdc_lightning.registry`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hdc_lightning.data.config import DataConfig


@dataclass
class RunConfig:
    name: str | None = None  # default: the config file's stem
    root: str = "runs"  # run directory = <root>/<name>/
    resume: bool = False  # continue runs/<name>/checkpoints/last.ckpt (full trainer state)
    overwrite: bool = False  # start afresh over an existing run directory
    seed: int = 42
    ckpt_every_n_steps: int = 100  # last.ckpt cadence (also written on exit)
    max_nonfinite_steps: int = 10  # stop after this many non-finite losses in a row
    min_free_mb: int = 200  # refuse to start with less free disk than this in the run directory
    config_path: str | None = None  # filled in by the loader
    rdp_figure: bool = True  # log the RD/RP figure (with JPEG/WebP/AVIF) at every validation
    # Weights-only initialisation from other stages (cannot be combined with resume):
    # {module attribute of the phase: {ckpt: path, prefix: key prefix in that checkpoint}}
    init_from: dict[str, Any] = field(default_factory=dict)
    freeze: list[str] = field(default_factory=list)  # phase module attributes kept frozen (eval, no grads)


@dataclass
class TrainerConfig:
    accelerator: str = "auto"
    devices: Any = 1
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    max_steps: int = 1000  # optimisation *batches* (phases with two optimizers say so)
    val_check_interval: int = 100  # batches between validations
    limit_val_batches: int = 4
    log_every_n_steps: int = 10
    gradient_clip_val: float | None = None
    enable_progress_bar: bool = True
    deterministic: bool = False


@dataclass
class ComponentSpec:
    name: str = "???"
    preset: str | None = "tiny"
    args: dict[str, Any] = field(default_factory=dict)


@dataclass
class PhaseConfig:
    """Base of every phase's ``Config``: the ``phase.name`` picks the LightningModule.

    The fields here are the validation contract every phase shares (see
    :mod:`hdc_lightning.phases.base`); each phase adds its own fields and defaults.
    """

    name: str = "???"
    val_lpips_net: str = "alex"  # LPIPS network of the validation metric (alex | vgg)
    val_dists: bool = True  # DISTS at validation (VGG16 trunk; slower than LPIPS on a CPU)
    # Tests/offline smoke runs only: LPIPS (loss and validation metric) on a randomly
    # initialised trunk; its values are logged as ``lpips_random_trunk``, never as ``lpips``.
    lpips_random_backbone: bool = False


@dataclass
class Config:
    run: RunConfig = field(default_factory=RunConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: ComponentSpec = field(default_factory=ComponentSpec)
    phase: dict[str, Any] = field(default_factory=dict)
