"""Plain nn.Modules (never import Lightning here), registered under kind ``model``."""
from hdc_lightning.models import drv, fusion, masks  # noqa: F401
from hdc_lightning.models import lic  # noqa: F401
from hdc_lightning.models import vq  # noqa: F401
from hdc_lightning.models import hybrid  # noqa: F401
