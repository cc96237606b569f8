"""Image files and bytes: listing, decoding to tensors, cropping and padding.

Shared by ``hdc compress``, the shard writer, the WebDataset loader and the evaluation
folder loader so that every path decodes an image the same way (RGB, uint8,
``[3, H, W]``; see :func:`pil_to_rgb` and docs/image-input.md).
"""

from __future__ import annotations

import io
import os
import random
import re
import struct
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hdc_lightning.errors import DataError, first_line
from hdc_lightning.fileio import read_regular

# Suffixes looked for in folders (case-insensitive). PNG and JPEG are the main formats;
# the others decode through Pillow.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".ppm")


# Raw shard payload ("<key>.rgb8"): magic, height and width as little-endian uint32,
# then the H*W*3 RGB bytes in row order. Decoding is a view of the bytes (no codec).
RAW_EXT = "rgb8"
RAW_MAGIC = b"RGB8"
_RAW_HEADER = struct.Struct("<4sII")
RAW_HEADER_BYTES = _RAW_HEADER.size  # 12


class CorruptImage(ValueError):
    """Bytes that no decoder can turn into an image (empty, truncated, not an image)."""


class ImageTooLarge(CorruptImage):
    """An image whose header declares more pixels than the caller accepts."""


# Pixel budget of every decode, checked on the header whatever the caller asks: 64 Mpx is a
# 0.2 GB uint8 image, larger than any photo the loaders need, far below what a forged
# header can declare (a 630-byte JPEG can claim 65535²).
DECODE_MAX_PIXELS = 1 << 26


def list_images(folder: str | os.PathLike, recursive: bool = True) -> list[Path]:
    """Image files under ``folder``, sorted by relative path; DataError when there are none."""
    root = Path(folder).expanduser()
    if not root.exists():
        raise DataError(f"image folder {str(root)!r} does not exist")
    if not root.is_dir():
        raise DataError(f"{str(root)!r} is not a folder")
    if not os.access(root, os.R_OK | os.X_OK):
        raise DataError(f"image folder {str(root)!r} is not readable (permission denied)")
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=None):
        dirnames.sort()
        files += [Path(dirpath) / f for f in filenames if Path(f).suffix.lower() in IMAGE_SUFFIXES]
        if not recursive:
            break
    if not files:
        where = "under" if recursive else "in"
        raise DataError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) {where} {str(root)!r}")
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def decode_rgb(data: bytes, max_side: int | None = None, max_pixels: int | None = None) -> torch.Tensor:
    """Decode encoded image bytes to an RGB uint8 tensor ``[3, H, W]`` (see :func:`pil_to_rgb`).

    Every reader (compress, eval, shards, the training loader) decodes through here, so an
    image looks the same everywhere. ``max_side``/``max_pixels`` (at most DECODE_MAX_PIXELS,
    always applied) are checked on the header, before the pixels are decoded. JPEG goes
    through torchvision's libjpeg (straight into a CHW tensor, EXIF orientation applied as in
    :func:`pil_to_rgb`); everything else, PNG
    included (torchvision's libpng wrapper crashes the process on damaged pixel data), and
    any JPEG torchvision refuses, goes through Pillow.
    """
    if not data:
        raise CorruptImage("empty file")
    max_pixels = min(max_pixels or DECODE_MAX_PIXELS, DECODE_MAX_PIXELS)
    x = None
    if bytes(data[:3]) == b"\xff\xd8\xff":
        from torchvision.io import ImageReadMode, decode_jpeg

        _check_size(data, max_side, max_pixels)  # libjpeg decodes whatever the header declares
        buf = data if isinstance(data, bytearray) else bytearray(data)  # torch wants a writable buffer
        try:
            x = decode_jpeg(
                torch.frombuffer(buf, dtype=torch.uint8), mode=ImageReadMode.RGB, apply_exif_orientation=True
            )
        except RuntimeError:
            x = None
    if x is None:
        x = _decode_pil(data, max_side, max_pixels)
    if x.ndim != 3 or x.shape[0] != 3 or x.shape[1] < 1 or x.shape[2] < 1:
        raise CorruptImage(f"decoded to an unusable shape {tuple(x.shape)}")
    return x


def encode_raw(rgb: np.ndarray | torch.Tensor) -> bytes:
    """The ``rgb8`` payload of an image: uint8 ``[H, W, 3]`` (NumPy) or ``[3, H, W]`` (tensor)."""
    if isinstance(rgb, torch.Tensor):
        rgb = rgb.permute(1, 2, 0).numpy()
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3 or 0 in rgb.shape:
        raise ValueError(f"raw payloads hold uint8 RGB images, got {rgb.dtype} {rgb.shape}")
    return _RAW_HEADER.pack(RAW_MAGIC, rgb.shape[0], rgb.shape[1]) + np.ascontiguousarray(rgb).tobytes()


def decode_raw(data: bytes | bytearray) -> torch.Tensor:
    """An ``rgb8`` payload as uint8 ``[3, H, W]``, channels last in memory.

    A ``bytearray`` payload is viewed; ``bytes`` (read-only) are copied once.
    The declared size must match the payload exactly, so a truncated or padded member,
    or a payload of another format, is a CorruptImage and never a large allocation.
    """
    if len(data) < RAW_HEADER_BYTES:
        raise CorruptImage(f"raw payload of {len(data)} bytes is shorter than its {RAW_HEADER_BYTES}-byte header")
    magic, h, w = _RAW_HEADER.unpack_from(data)
    if magic != RAW_MAGIC:
        raise CorruptImage(f"raw payload starts with {magic!r}, not {RAW_MAGIC!r}")
    if h < 1 or w < 1 or len(data) != RAW_HEADER_BYTES + h * w * 3:
        raise CorruptImage(
            f"raw payload declares {h}x{w} pixels ({h * w * 3} bytes) but holds {len(data) - RAW_HEADER_BYTES} bytes"
        )
    pixels = np.frombuffer(data, dtype=np.uint8, count=h * w * 3, offset=RAW_HEADER_BYTES)
    if not isinstance(data, bytearray):  # torch tensors must be writable: copy read-only bytes
        pixels = pixels.copy()
    return torch.from_numpy(pixels).view(h, w, 3).permute(2, 0, 1)


# Pillow errors that mean "these bytes are not a usable image".
def _pil_errors():
    from PIL import Image

    return (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)


def _open(data: bytes):
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():  # sizes are checked against our own budget, not Pillow's
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data))
    except UnidentifiedImageError:  # its message shows a BytesIO repr, not a reason
        raise CorruptImage("unknown image format; PNG, JPEG, WebP, TIFF, BMP and PPM are read") from None
    except Image.DecompressionBombError as e:  # Pillow's own bound, far above ours: say ours
        declared = re.search(r"\((\d+) pixels\)", str(e))
        size = f"{int(declared.group(1)) / 2**20:.1f} Mpx" if declared else "too many pixels"
        raise ImageTooLarge(f"image declares {size}, over the limit of {DECODE_MAX_PIXELS / 2**20:.1f} Mpx") from None
    except _pil_errors() as e:
        raise CorruptImage(first_line(e)) from None


def _check_size(data: bytes, max_side: int | None, max_pixels: int | None) -> None:
    with _open(data) as im:
        _check_dims(*im.size, max_side, max_pixels)


def _check_dims(w: int, h: int, max_side: int | None, max_pixels: int | None) -> None:
    if max_side and max(w, h) > max_side:
        raise ImageTooLarge(f"image is {w}x{h}, over the limit of {max_side} pixels per side")
    if max_pixels and w * h > max_pixels:
        raise ImageTooLarge(
            f"image is {w}x{h} ({w * h / 2**20:.1f} Mpx), over the limit of {max_pixels / 2**20:.1f} Mpx"
        )


def _decode_pil(data: bytes, max_side: int | None, max_pixels: int) -> torch.Tensor:
    from PIL import Image

    with _open(data) as im, warnings.catch_warnings():
        _check_dims(*im.size, max_side, max_pixels)  # from the header Pillow just read, before load()
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im.load()
            rgb = pil_to_rgb(im)
        except _pil_errors() as e:
            raise CorruptImage(first_line(e)) from None
    return torch.from_numpy(rgb).permute(2, 0, 1).contiguous()


# Transparent pixels are composited onto this colour (what a browser shows on a white page).
BACKGROUND = (255, 255, 255)
_WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def _full_scale(im) -> float:
    """The value that means 'white' for a one-channel wide image (Pillow mode I;16, I or F)."""
    if im.mode.startswith("I;16"):
        return 65535.0
    if im.mode == "F":
        return 1.0  # float images are taken to be in [0, 1]
    tags = getattr(im, "tag_v2", {})

    def tag(code: int, default: int) -> int:  # TIFF tags come as a value or a per-sample tuple
        v = tags.get(code, default)
        return int(v[0] if isinstance(v, tuple) else v)

    narrow = im.format in ("PNG", "PPM")  # these formats hold at most 16 unsigned bits
    bits, signed = tag(258, 16 if narrow else 32), tag(339, 1 if narrow else 2) == 2
    return float(2 ** (bits - 1) - 1 if signed else 2**bits - 1)


def pil_to_rgb(im) -> np.ndarray:
    """An opened Pillow image as uint8 ``[H, W, 3]``, the one conversion every reader shares.

    - EXIF orientation is applied (the image is turned as a viewer shows it);
    - 16-bit, 32-bit integer and float one-channel images are scaled from their full range
      (65535, the TIFF's bit depth, 1.0 for float) to 0..255, negative values clipped to 0;
    - alpha (RGBA, LA, palette or colour-key transparency) is composited onto BACKGROUND;
    - only the first frame of an animated or multi-page file is read; an embedded ICC
      profile is not applied (pixel values are taken as sRGB).
    """
    from PIL import ExifTags, Image, ImageOps

    if im.getexif().get(ExifTags.Base.Orientation, 1) in range(2, 9):
        im = ImageOps.exif_transpose(im)
    if im.mode in _WIDE_MODES:
        x = np.asarray(im).astype(np.float64) / _full_scale(im)
        gray = np.rint(np.clip(np.nan_to_num(x, nan=0.0), 0.0, 1.0) * 255.0).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        im = Image.alpha_composite(Image.new("RGBA", rgba.size, (*BACKGROUND, 255)), rgba)
    return np.array(im.convert("RGB"))


# Largest image file read from disk: an uncompressed 16-bit RGB TIFF at Pillow's
# decompression-bomb limit (89 Mpx) is about 0.5 GiB.
MAX_IMAGE_FILE_BYTES = 1 << 30


def read_rgb(path: str | os.PathLike, max_side: int | None = None, max_pixels: int | None = None) -> torch.Tensor:
    """Read and decode one image file (uint8 ``[3, H, W]``).

    Raises UnreadableFile (an OSError) for a missing, non-regular or oversized file,
    ImageTooLarge past ``max_side``/``max_pixels``, CorruptImage for bytes that do not decode.
    """
    return decode_rgb(read_regular(path, MAX_IMAGE_FILE_BYTES, "image"), max_side, max_pixels)


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 → float32 in [0, 1]."""
    return x.to(torch.float32).div_(255.0)


def random_crop(x: torch.Tensor, size: int, rng: random.Random) -> torch.Tensor:
    """A random ``size``×``size`` window of ``x`` [C, H, W]; a side shorter than ``size``
    is taken whole (the caller pads it with :func:`pad_to`)."""
    _, h, w = x.shape
    top = rng.randint(0, max(h - size, 0))
    left = rng.randint(0, max(w - size, 0))
    return x[:, top : top + size, left : left + size]


def pad_to(x: torch.Tensor, height: int, width: int, mode: str = "reflect") -> torch.Tensor:
    """Pad float ``x`` [C, H, W] on the bottom/right to at least ``height``×``width``.

    Reflection needs the padding to be smaller than the side it mirrors; when an
    image is that small the edge pixels are replicated instead.
    """
    _, h, w = x.shape
    ph, pw = max(height - h, 0), max(width - w, 0)
    if ph == 0 and pw == 0:
        return x
    if mode == "reflect" and (ph >= h or pw >= w):
        mode = "replicate"
    return F.pad(x[None], (0, pw, 0, ph), mode=mode)[0]


def batch_views(crops: list[torch.Tensor], size: int, rng: random.Random, shared: bool = False) -> torch.Tensor:
    """Training batch float32 ``[B, 3, size, size]`` in [0, 1] from uint8 crops.

    Each crop is flipped left-right with probability 1/2 and padded (reflection) when
    its image was smaller than ``size``. Crops are written straight into one batch
    tensor and converted once: no per-image float copies. ``shared`` allocates it in
    shared memory, as PyTorch's collate does inside loader workers, so handing it to
    the main process needs no extra copy.
    """
    out = torch.empty(len(crops), 3, size, size)
    if shared:
        out.share_memory_()
    for i, x in enumerate(crops):
        if x.shape[-2:] != (size, size):
            x = pad_to(x.float(), size, size, mode="reflect")
        out[i].copy_(x.flip(-1) if rng.random() < 0.5 else x)
    return out.div_(255.0)


def pad_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Replicate-pad float ``x`` [..., H, W] on the bottom/right to a multiple of ``multiple``."""
    h, w = x.shape[-2:]
    hp = -(-h // multiple) * multiple
    wp = -(-w // multiple) * multiple
    if (hp, wp) == (h, w):
        return x
    squeeze = x.ndim == 3
    y = F.pad(x[None] if squeeze else x, (0, wp - w, 0, hp - h), mode="replicate")
    return y[0] if squeeze else y
