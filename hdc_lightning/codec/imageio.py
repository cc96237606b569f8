"""Reading and writing image files for the codec CLI, with one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from hdc_lightning.codec.container import MAX_PIXELS, MAX_SIDE
from hdc_lightning.errors import DataError


def read_image(path: str | Path, max_side: int = MAX_SIDE, max_pixels: int = MAX_PIXELS) -> torch.Tensor:
    """An RGB image file as float32 Tensor[3,H,W] in [0,1]; size checked before decoding."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: image not found")
    try:
        with Image.open(path) as im:
            w, h = im.size  # header only: refuse huge images before decoding the pixels
            if w > max_side or h > max_side or w * h > max_pixels:
                raise DataError(f"{path}: image is {w}x{h}, the codec accepts up to {max_side} per side "
                                f"and {max_pixels} pixels")
            rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except DataError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise DataError(f"{path}: not a readable image ({first})") from None
    return torch.from_numpy(rgb.copy()).permute(2, 0, 1).float().div_(255.0)


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """Tensor[3,H,W] in [0,1] → uint8 HxWx3 (NaN → 0, clamped, rounded)."""
    x = torch.nan_to_num(image.detach().float().cpu(), nan=0.0).clamp_(0, 1)
    return x.mul(255).round_().to(torch.uint8).permute(1, 2, 0).numpy()


def write_image(path: str | Path, image: torch.Tensor) -> Path:
    """Write Tensor[3,H,W] in [0,1] as a lossless PNG (or the format the suffix names)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(to_uint8(image)).save(path)
    except (OSError, ValueError, KeyError) as e:
        raise DataError(f"{path}: cannot write image ({str(e).splitlines()[0][:200] if str(e) else type(e).__name__})") from None
    return path
