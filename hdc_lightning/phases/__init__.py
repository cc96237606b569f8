"""LightningModules, one per training phase, registered under kind ``phase``."""

from hdc_lightning.phases.base import NonFiniteLossError, PhaseModule
from hdc_lightning.phases import lic  # noqa: F401  (registers phase "lic")
from hdc_lightning.phases import vq  # noqa: F401  (registers phase "vq")

__all__ = ["NonFiniteLossError", "PhaseModule"]
from hdc_lightning.phases import drv, fusion  # noqa: F401  (register phases "drv", "fusion")
