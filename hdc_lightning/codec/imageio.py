"""Reading and writing image files for the codec CLI, with one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from hdc_lightning.codec.container import MAX_PIXELS, MAX_SIDE
from hdc_lightning.errors import DataError, first_line
from hdc_lightning.fileio import MARKER, output_file


def read_image(path: str | Path, max_side: int = MAX_SIDE, max_pixels: int = MAX_PIXELS) -> torch.Tensor:
    """An image file as float32 Tensor[3,H,W] in [0,1], decoded as every reader decodes it
    (:func:`hdc_lightning.data.images.decode_rgb`); its size is checked before decoding."""
    from hdc_lightning.data.images import CorruptImage, ImageTooLarge, read_rgb, to_float

    try:
        return to_float(read_rgb(path, max_side, max_pixels))
    except ImageTooLarge as e:
        raise DataError(f"{path}: {e} the codec accepts") from None
    except CorruptImage as e:
        raise DataError(f"{path}: not a readable image ({e})") from None


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """Tensor[3,H,W] in [0,1] → uint8 HxWx3 (NaN → 0, clamped, rounded)."""
    x = torch.nan_to_num(image.detach().float().cpu(), nan=0.0).clamp_(0, 1)
    return x.mul(255).round_().to(torch.uint8).permute(1, 2, 0).numpy()


def image_format(path: str | Path) -> str:
    """The Pillow format a file name's suffix asks for; DataError when there is none to write."""
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None or fmt not in Image.SAVE:
        raise DataError(
            f"{path}: unknown image file type {path.suffix or '(no suffix)'!r}; name the output e.g. out.png (lossless)"
        )
    return fmt


def write_image(path: str | Path, image: torch.Tensor) -> Path:
    """Write Tensor[3,H,W] in [0,1] as a lossless PNG (or the format the suffix names)."""
    return write_pil(path, Image.fromarray(to_uint8(image)))


def write_pil(path: str | Path, img: Image.Image) -> Path:
    """Write a PIL image in the format the suffix names.

    Whole or not at all, and entered in the ledger (a later run may replace it without --force).
    """
    path = Path(path)
    fmt = image_format(path)
    extra = {}
    if fmt == "PNG":
        info = PngInfo()
        info.add_text("Software", MARKER)
        extra["pnginfo"] = info
    try:
        with output_file(path) as tmp:
            img.save(tmp, format=fmt, **extra)
    except (ValueError, KeyError) as e:
        raise DataError(f"{path}: cannot write image ({first_line(e)})") from None
    return path
