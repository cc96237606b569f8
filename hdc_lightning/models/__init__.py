"""Plain nn.Modules (never import Lightning here), registered under kind ``model``."""

from hdc_lightning.models import (  # noqa: F401
    drv,
    fusion,
    hybrid,  # noqa: F401
    lic,  # noqa: F401
    masks,
    mlicpp,  # noqa: F401
    vq,  # noqa: F401
)
