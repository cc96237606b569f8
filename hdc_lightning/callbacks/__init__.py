"""Every Lightning callback (and the checkpoint I/O plugin) of the trainer, in one package.

* :class:`LastCheckpoint` and :class:`AtomicCheckpointIO` — ``last.ckpt`` cadence, atomic writes
* :class:`RDPFigureCallback` — the RD/RP figure (``val/rdp``) at every validation
"""

from hdc_lightning.callbacks.checkpoint import AtomicCheckpointIO, LastCheckpoint
from hdc_lightning.callbacks.rdp import RDP_FILE, RDPFigureCallback

__all__ = ["AtomicCheckpointIO", "LastCheckpoint", "RDP_FILE", "RDPFigureCallback"]
