"""The checkerboard split of a latent: anchors are coded first, non-anchors with them as context.

Anchors sit where row + column is odd (``[0::2, 1::2]`` and ``[1::2, 0::2]``), as in MLIC++.
The *squeezed* form keeps only one half, ``[B, C, H, W/2]``, row by row; the coder codes
that half and nothing else.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _cols(anchor: bool) -> tuple[int, int]:
    """First column of the half on even rows and on odd rows."""
    return (1, 0) if anchor else (0, 1)


def keep(y: Tensor, anchor: bool) -> Tensor:
    """``y`` with the other half set to zero."""
    out = torch.zeros_like(y)
    even, odd = _cols(anchor)
    out[:, :, 0::2, even::2] = y[:, :, 0::2, even::2]
    out[:, :, 1::2, odd::2] = y[:, :, 1::2, odd::2]
    return out


def squeeze(y: Tensor, anchor: bool) -> Tensor:
    """``[B, C, H, W]`` → the half ``[B, C, H, W/2]``."""
    b, c, h, w = y.shape
    out = y.new_zeros(b, c, h, w // 2)
    even, odd = _cols(anchor)
    out[:, :, 0::2] = y[:, :, 0::2, even::2]
    out[:, :, 1::2] = y[:, :, 1::2, odd::2]
    return out


def unsqueeze(half: Tensor, anchor: bool) -> Tensor:
    """The half ``[B, C, H, W/2]`` → ``[B, C, H, W]`` with zeros in the other half."""
    b, c, h, w = half.shape
    out = half.new_zeros(b, c, h, 2 * w)
    even, odd = _cols(anchor)
    out[:, :, 0::2, even::2] = half[:, :, 0::2]
    out[:, :, 1::2, odd::2] = half[:, :, 1::2]
    return out


def anchor_map(h: int, w: int) -> Tensor:
    """``[h, w]`` bool, True at anchors."""
    r = torch.arange(h)[:, None]
    c = torch.arange(w)[None, :]
    return (r + c) % 2 == 1
