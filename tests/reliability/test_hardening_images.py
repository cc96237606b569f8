"""Issue 14, cases 5 and 6: every reader (compress, eval, shards, the loader) sees the same
pixels: wide-range images scaled, EXIF orientation applied, alpha on white."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from hdc_lightning.codec.imageio import read_image
from hdc_lightning.data.images import BACKGROUND, decode_raw, decode_rgb, read_rgb
from hdc_lightning.data.shards import encode_sample

RAMP = np.linspace(0.0, 1.0, 64 * 64).reshape(64, 64)  # black to white, mid-grey in the middle


def _save(array: np.ndarray, name: str, tmp_path, **kw):
    path = tmp_path / name
    Image.fromarray(array).save(path, **kw)
    return path


def _every_reader(path) -> list[torch.Tensor]:
    """uint8 [3,H,W] as compress, eval (read_rgb), a raw shard and a png shard see the file."""
    data = path.read_bytes()
    views = [(read_image(path) * 255).round().to(torch.uint8), read_rgb(path), decode_raw(encode_sample(data)[1])]
    ext, payload = encode_sample(data, fmt="png")
    views.append(decode_rgb(payload))
    return views


@pytest.mark.parametrize(
    "name, array",
    [
        ("gray16.png", (RAMP * 65535).round().astype(np.uint16)),  # Pillow mode I;16
        ("gray16.tif", (RAMP * 65535).round().astype(np.uint16)),  # I;16 TIFF
        ("int32.tif", (RAMP * (2**31 - 1)).round().astype(np.int32)),  # mode I, 32-bit signed
        ("float.tif", RAMP.astype(np.float32)),  # mode F in [0, 1]
    ],
)
def test_wide_range_images_are_scaled_not_clipped(tmp_path, name, array):
    path = _save(array, name, tmp_path)
    expected = np.rint(RAMP * 255)
    for view in _every_reader(path):
        assert view.shape == (3, 64, 64)
        assert np.abs(view[0].numpy().astype(float) - expected).max() <= 1, name
        assert torch.equal(view[0], view[1]) and torch.equal(view[0], view[2])


def _oriented_jpeg(tmp_path, orientation: int):
    rng = np.random.default_rng(1)
    pixels = np.kron(rng.integers(0, 256, (5, 8, 3)), np.ones((8, 8, 1))).astype(np.uint8)  # 40x64, blocky
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _save(pixels, f"o{orientation}.jpg", tmp_path, exif=exif, quality=95), pixels


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_is_applied_by_every_reader(tmp_path, orientation):
    path, _ = _oriented_jpeg(tmp_path, orientation)
    upright = (64, 40) if orientation in (6, 8) else (40, 64)
    views = _every_reader(path)
    views.append(decode_raw(encode_sample(path.read_bytes(), resize=1000)[1]))  # the --resize path
    for view in views:
        assert tuple(view.shape[1:]) == upright
        assert (view.int() - views[1].int()).abs().max() <= 2  # same pixels, whichever decoder


def test_alpha_is_composited_on_white(tmp_path):
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., 0] = 200  # red hidden under full transparency on the left half...
    rgba[:, 8:, 3] = 255  # ...opaque on the right half
    path = _save(rgba, "alpha.png", tmp_path)
    for view in _every_reader(path):
        assert view[:, :, :8].eq(torch.tensor(BACKGROUND, dtype=torch.uint8)[:, None, None]).all()
        assert view[:, 0, 8].tolist() == [200, 0, 0]


def test_palette_transparency_is_composited_too(tmp_path):
    im = Image.new("P", (8, 8), 1)
    im.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    im.info["transparency"] = 1
    path = tmp_path / "p.png"
    im.save(path, transparency=1)
    assert read_rgb(path)[:, 0, 0].tolist() == list(BACKGROUND)


def test_animated_images_give_their_first_frame(tmp_path):
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    x = decode_rgb(buf.getvalue())
    assert x[0, 0, 0] > 200 and x[2, 0, 0] < 50  # red, the first frame
