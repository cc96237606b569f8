"""Loss modules, registered under kind ``loss``."""

from hdc_lightning.losses import (  # noqa: F401
    drv,  # noqa: F401
    perceptual,
    vqgan,
)
