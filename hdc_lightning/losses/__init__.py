"""Loss modules, registered under kind ``loss``."""
from hdc_lightning.losses import drv  # noqa: F401
from hdc_lightning.losses import perceptual, vqgan  # noqa: F401
