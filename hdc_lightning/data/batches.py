"""The two batch types the loaders hand to the phases.

NamedTuples keep their type through PyTorch's default collate/convert and through
Lightning's device transfer (tensors move, the names list stays as it is).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:  # annotations only: importing the config schema must not load torch
    import torch


class TrainBatch(NamedTuple):
    """A training batch from the shard stream.

    images:  float32 ``[B, 3, crop, crop]`` in [0, 1].
    skipped: 0-dim int64, corrupt samples this worker skipped since its previous batch.
    """

    images: torch.Tensor
    skipped: torch.Tensor


class EvalBatch(NamedTuple):
    """One full evaluation image, padded for the model.

    images: float32 ``[1, 3, Hp, Wp]``, replicate-padded on the bottom/right to the
            configured multiple; crop model outputs back with ``x[..., :h, :w]``.
    sizes:  int64 ``[1, 2]``, the original ``(H, W)``.
    names:  the image's path relative to the folder, e.g. ``["kodim01.png"]``.
    """

    images: torch.Tensor
    sizes: torch.Tensor
    names: list[str]
