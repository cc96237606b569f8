"""Published weights → stages of ours (``hdc import KIND FILE -o STAGE_DIR``; docs/pretrained.md).

Each family module maps one project's files; :func:`import_file` reads a file without running
its code, loads it strictly into a registered model and writes a stage directory that a
recipe's ``init_from`` and ``hdc eval`` accept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hdc_lightning.errors import ConfigError
from hdc_lightning.importers import base, llamagen, mlicpp, taming
from hdc_lightning.importers.base import MANIFEST, Family

FAMILIES: dict[str, Family] = {f.kind: f for f in (taming.FAMILY, llamagen.FAMILY, mlicpp.FAMILY)}


def family(kind: str) -> Family:
    if kind not in FAMILIES:
        raise ConfigError(f"unknown import kind '{kind}'; known: {', '.join(FAMILIES)}")
    return FAMILIES[kind]


def import_file(kind: str, path: str | Path, stage_dir: str | Path, force: bool = False) -> dict[str, Any]:
    """Convert the downloaded ``path`` of ``kind`` into ``stage_dir``; returns its manifest."""
    return base.import_file(family(kind), path, stage_dir, force)


__all__ = ["FAMILIES", "MANIFEST", "Family", "family", "import_file"]
