"""`hdc compress --target-bpp R`: the best expected-quality file of at most R bpp, by real encodes."""

from __future__ import annotations

import pytest

from hdc_lightning.cli import main
from hdc_lightning.codec import load_codec
from hdc_lightning.codec.imageio import read_image, write_image
from hdc_lightning.codec.rate_control import Point, choose, mask_order
from hdc_lightning.errors import ConfigError
from tests.helpers.images import synthetic_image
from tests.helpers.models import random_init_checkpoint

HDC_TINY = {"name": "hdc", "preset": "tiny", "args": {}}
SHAPES = [(64, 96), (48, 80)]


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    d = tmp_path_factory.mktemp("rc")
    return [random_init_checkpoint(d / f"hdc-tiny-{s}.ckpt", HDC_TINY, seed=s) for s in (0, 1)]


@pytest.fixture(scope="module")
def codec(ckpts):
    return load_codec(str(ckpts[0]))


@pytest.fixture(scope="module")
def files(codec):
    """Every mask level's real file for each test image: the ground truth rate control must match."""
    out = []
    for i, (h, w) in enumerate(SHAPES):
        image = synthetic_image(h, w, seed=i)
        out.append((image, {m: codec.encode(image, mask=m) for m in mask_order(codec, image)}))
    return out


def _bpp(data, image):
    return len(data) * 8 / (image.shape[-2] * image.shape[-1])


def test_mask_order_is_sent_share_descending(codec, files):
    for image, _ in files:
        order = mask_order(codec, image)
        assert order[0] == "full" and order[-1] == "none"
        assert order.index("1/4") < order.index("1/9")


def test_lands_at_or_under_target_and_picks_the_best_that_fits(codec, files):
    for image, by_mask in files:
        sizes = sorted({_bpp(d, image) for d in by_mask.values()})
        for target in (sizes[-1], (sizes[0] + sizes[-1]) / 2, sizes[0], sizes[-1] * 3):
            pick = choose([Point("p", codec)], image, target)
            assert pick.bpp <= target and _bpp(pick.data, image) == pick.bpp
            fitting = [m for m in mask_order(codec, image) if _bpp(by_mask[m], image) <= target]
            assert pick.mask == fitting[0], (target, pick.mask, fitting)
            assert pick.data == by_mask[pick.mask]  # exactly what `hdc compress --mask LEVEL` writes


def test_below_the_smallest_size_fails_naming_it(codec, files):
    image, by_mask = files[0]
    floor = _bpp(by_mask["none"], image)
    with pytest.raises(ConfigError, match=f"smallest reachable size, {floor:.4f} bpp"):
        choose([Point("p", codec)], image, floor * 0.99)


def test_cli_target_over_two_rate_points_decodes(tmp_path, ckpts, files, capsys):
    image, by_mask = files[1]
    png = write_image(tmp_path / "img.png", image)
    target = _bpp(by_mask["full"], image) * 2  # generous: the larger LIC base wins, with all indices
    out = tmp_path / "img.hdc"
    argv = ["compress", str(png), "-o", str(out), "--ckpt", str(ckpts[0]), "--ckpt", str(ckpts[1])]
    assert main([*argv, "--target-bpp", f"{target:.6f}"]) == 0
    line = capsys.readouterr().out.strip()
    assert out.stat().st_size * 8 / (image.shape[-2] * image.shape[-1]) <= target
    assert "mask full" in line and "decode with --ckpt" in line
    chosen = line.rsplit("--ckpt ", 1)[1]
    assert main(["decompress", str(out), "-o", str(tmp_path / "d.png"), "--ckpt", chosen]) == 0
    assert read_image(tmp_path / "d.png").shape == image.shape


@pytest.mark.parametrize("value", ["0", "-1", "abc", "nan", "0.05,0.1"])
def test_bad_target_is_a_one_line_error(tmp_path, ckpts, value, capsys):
    png = write_image(tmp_path / "img.png", synthetic_image(32, 32))
    assert main(["compress", str(png), "--ckpt", str(ckpts[0]), "--target-bpp", value]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--target-bpp" in err, err


def test_cli_below_minimum_is_a_one_line_error(tmp_path, ckpts, capsys):
    png = write_image(tmp_path / "img.png", synthetic_image(32, 32))
    assert main(["compress", str(png), "--ckpt", str(ckpts[0]), "--target-bpp", "0.001"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "smallest reachable size" in err, err
    assert not (tmp_path / "img.hdc").exists()
