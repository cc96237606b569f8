"""Loading entropy-model state whose CDF tables have changed shape.

``update()`` replaces the (initially empty) CDF buffers of every EntropyBottleneck and
GaussianConditional with tables whose size depends on the weights, so a fresh model
cannot ``load_state_dict`` a checkpoint written after ``update()`` (nor an updated
model one written before). Resizing the registered buffers to the checkpoint's shapes
first makes both directions load; the values are then copied in as usual.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from compressai.entropy_models import EntropyModel
from torch import nn

CDF_BUFFERS = ("_quantized_cdf", "_offset", "_cdf_length", "scale_table")
# the integer tables of MLIC++'s exact path (hdc_lightning.models.mlicpp.ops), sized by update() too
FIXED_POINT_TABLES = ("gelu_table", "tanh_table", "exp_table")


def is_table(key: str) -> bool:
    """A state key of a table ``update()`` builds (its shape follows the weights, not the spec)."""
    return key.rsplit(".", 1)[-1] in CDF_BUFFERS + FIXED_POINT_TABLES


def resize_entropy_buffers(module: nn.Module, state_dict: Mapping[str, torch.Tensor], prefix: str = "") -> int:
    """Resize the CDF buffers under ``module`` to the shapes in ``state_dict``.

    ``prefix`` is the module's key prefix in ``state_dict`` (e.g. ``"model."``).
    Returns how many buffers were resized.
    """
    resized = 0
    for name, sub in module.named_modules():
        if not isinstance(sub, EntropyModel):
            continue
        for buf_name in CDF_BUFFERS:
            key = f"{prefix}{name}.{buf_name}" if name else f"{prefix}{buf_name}"
            buf = sub._buffers.get(buf_name)
            if key not in state_dict or buf is None:
                continue
            target = state_dict[key]
            if buf.shape != target.shape or buf.dtype != target.dtype:
                # A new tensor (not resize_): its storage may be shared with an old copy.
                sub._buffers[buf_name] = torch.zeros(target.shape, dtype=target.dtype, device=buf.device)
                resized += 1
    return resized
