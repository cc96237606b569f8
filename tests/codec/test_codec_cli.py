"""`hdc compress` / `hdc decompress`: a real file whose size is the bpp printed."""

from __future__ import annotations

import re

import pytest

from hdc_lightning.cli import main
from hdc_lightning.codec.imageio import read_image, write_image
from tests.helpers.images import synthetic_image


@pytest.fixture()
def png(tmp_path):
    return write_image(tmp_path / "img.png", synthetic_image(80, 120, seed=None))


def test_compress_decompress_round_trip(tmp_path, png, tiny_ckpt, capsys):
    hdc = tmp_path / "out" / "img.hdc"
    assert main(["compress", str(png), "-o", str(hdc), "--ckpt", str(tiny_ckpt)]) == 0
    line = capsys.readouterr().out.strip()
    size = hdc.stat().st_size
    bpp = float(re.search(r"([0-9.]+) bpp", line).group(1))
    assert f"{size} bytes" in line and bpp == pytest.approx(size * 8 / (80 * 120), abs=1e-4)
    out = tmp_path / "dec.png"
    assert main(["decompress", str(hdc), "-o", str(out), "--ckpt", str(tiny_ckpt)]) == 0
    assert "header" in capsys.readouterr().out
    assert read_image(out).shape == (3, 80, 120)


def _one_line_error(argv, capsys, *needles):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for n in needles:
        assert n in err, err


def test_cli_errors_are_one_line(tmp_path, png, tiny_ckpt, other_ckpt, capsys):
    ck = str(tiny_ckpt)
    _one_line_error(["compress", str(tmp_path / "nope.png"), "--ckpt", ck], capsys, "image not found")
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image at all")
    _one_line_error(["compress", str(junk), "--ckpt", ck], capsys, "not a readable image")
    _one_line_error(["compress", str(png), "--ckpt", str(tmp_path / "none.ckpt")], capsys, "checkpoint not found")
    _one_line_error(["decompress", str(junk), "--ckpt", ck], capsys, "not an .hdc file")
    _one_line_error(["decompress", str(tmp_path / "none.hdc"), "--ckpt", ck], capsys, "file not found")
    hdc = tmp_path / "img.hdc"
    assert main(["compress", str(png), "-o", str(hdc), "--ckpt", str(other_ckpt)]) == 0
    _one_line_error(["decompress", str(hdc), "--ckpt", ck], capsys, "made by model lic#", "decode it with")
