"""Checkpoint I/O: atomic writes, ``weights_only=True`` reads, clear errors. Plain torch.

A crash mid-write never leaves a half-written file (:func:`atomic_torch_save` writes
``*.tmp`` then renames; the trainer's plugin, :class:`hdc_lightning.callbacks.AtomicCheckpointIO`,
uses it); later stages read earlier stages' weights with :func:`load_state_dict`, and
``load_codec`` reads checkpoints through :func:`safe_load` without importing Lightning.
"""

from __future__ import annotations

import argparse
import os
import re
import stat
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from hdc_lightning.errors import CheckpointError, first_line


def atomic_torch_save(obj: Any, path: str | Path, record: bool = False) -> None:
    """``torch.save`` through :func:`hdc_lightning.fileio.output_file` (whole or not at all);
    ``record``: a command's output that a rerun may replace without --force."""
    from hdc_lightning.fileio import output_file

    with output_file(path, record) as tmp:
        torch.save(obj, tmp)


class LegacyObject:
    """What a class named in an old training checkpoint becomes when read (no code of it runs)."""


# Classes old third-party training checkpoints name besides tensors, admitted by
# ``safe_load(legacy=True)``: PyTorch Lightning 1.0 keyed its callback states by the callback
# class (taming-transformers' VQGANs), LlamaGen stores its argparse arguments.
LEGACY_GLOBALS = [
    (LegacyObject, "pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint"),
    (LegacyObject, "pytorch_lightning.callbacks.early_stopping.EarlyStopping"),
    argparse.Namespace,
]


def _load_error(e: Exception) -> str:
    # torch's weights-only refusal starts with a paragraph of advice; the global it refused says more.
    refused = re.search(r"Unsupported (?:global|class):? (?:GLOBAL )?([\w.]+)", str(e))
    if refused:
        return f"refers to {refused.group(1)}, which a weights-only read does not admit"
    if isinstance(e, KeyError):  # torch's legacy reader looking up a storage key in bytes that are not a checkpoint
        return "its bytes are not a torch checkpoint"
    return first_line(e)


def safe_load(path: str | Path, map_location: Any = "cpu", legacy: bool = False) -> dict:
    """``torch.load(weights_only=True)`` with one-line errors naming the file.

    ``legacy=True`` also reads torch's pre-1.6 (non-zip) format and the classes in
    :data:`LEGACY_GLOBALS`, still weights-only: the files third-party packages ship (lpips'
    heads, torchmetrics' DISTS weights, published VQGAN checkpoints)."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except OSError:
        raise CheckpointError(f"{path}: checkpoint not found") from None
    if not stat.S_ISREG(mode):
        kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file (a pipe or a device)"
        raise CheckpointError(f"{path}: is {kind}, not a checkpoint file")
    if not legacy and not zipfile.is_zipfile(
        path
    ):  # torch.save writes zip archives; torch's own error here is a long notice
        raise CheckpointError(f"{path}: not a readable checkpoint (not an archive written by torch.save)")
    try:
        with torch.serialization.safe_globals(LEGACY_GLOBALS if legacy else []):
            obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises many types for bad files
        raise CheckpointError(f"{path}: not a readable checkpoint ({_load_error(e)})") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: not a checkpoint (top level is {type(obj).__name__})")
    return obj


def checkpoint_config(ckpt: Mapping[str, Any], path: str | Path = "checkpoint") -> dict:
    """The resolved training config a phase stored in its hyper-parameters."""
    try:
        return ckpt["hyper_parameters"]["cfg"]
    except (KeyError, TypeError):
        raise CheckpointError(f"{path}: has no hdc_lightning config (not written by `hdc fit`?)") from None


def load_state_dict(path: str | Path, prefix: str = "") -> dict[str, torch.Tensor]:
    """The ``state_dict`` entries under ``prefix`` (stripped) of a Lightning or plain checkpoint."""
    ckpt = safe_load(path)
    state = ckpt.get("state_dict", ckpt)
    if prefix:
        state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        if not state:
            raise CheckpointError(f"{path}: no weights under '{prefix}'")
    return state
