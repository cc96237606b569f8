"""Loss modules, registered under kind ``loss``."""

from hdc_lightning.losses import (  # noqa: F401
    adversarial,
    drv,
    fusion,
    perceptual,
    rate_distortion,
    vqgan,
)
