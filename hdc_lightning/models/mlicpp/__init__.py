"""MLIC++ as a LIC-stream variant (``model: {name: mlicpp}``), for imported published weights."""

from hdc_lightning.models.mlicpp.model import MLICPP

__all__ = ["MLICPP"]
