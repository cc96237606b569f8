"""LightningModules, one per training phase, registered under kind ``phase``."""

from hdc_lightning.phases import drv, fusion, lic, vq  # noqa: F401  (register the four phases)
from hdc_lightning.phases.base import NonFiniteLossError, PhaseModule

__all__ = ["NonFiniteLossError", "PhaseModule"]
