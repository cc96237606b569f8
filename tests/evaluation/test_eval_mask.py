"""`hdc eval --mask MODE`: every image of a hybrid checkpoint coded at one mask level."""

from __future__ import annotations

import json

import pytest

from hdc_lightning.cli import main
from hdc_lightning.codec.imageio import write_image
from tests.helpers.images import synthetic_image
from tests.helpers.models import random_init_checkpoint


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("mask")
    folder = d / "imgs"
    folder.mkdir()
    write_image(folder / "a.png", synthetic_image(64, 96, seed=4))
    hdc = random_init_checkpoint(d / "hdc-tiny.ckpt", "hdc", seed=0)
    lic = random_init_checkpoint(d / "lic-tiny.ckpt", "lic", seed=0)
    return d, folder, hdc, lic


def _eval(d, folder, ckpt, *extra) -> int:
    return main(["eval", str(ckpt), "--data", str(folder), "--baselines", "none", "--no-lpips", "--no-dists",
                 "--no-fid", "--no-kid-vgg16", "--no-ms-ssim", "--no-progress", *extra])  # fmt: skip


def test_the_mask_level_sets_what_is_sent(setup):
    d, folder, hdc, _ = setup
    rate = {}
    for mask in ("none", "full"):
        out = d / mask.replace("/", "_")
        assert _eval(d, folder, hdc, "-o", str(out), "--mask", mask) == 0
        result = json.loads((out / "hdc.json").read_text())
        assert result["meta"]["mask"] == mask
        rate[mask] = result["results"]["bpp"][0]
    assert rate["none"] < rate["full"]  # the index bytes of every token against none


@pytest.mark.parametrize(
    "extra, words",
    [(["--mask", "1/3"], "--mask"), (["--mask", "none", "--target-bpp", "0.1"], "--target-bpp")],
)
def test_bad_mask_options_are_one_line(setup, capsys, extra, words):
    d, folder, hdc, _ = setup
    assert _eval(d, folder, hdc, "-o", str(d / "bad"), *extra) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err, err


def test_a_lic_checkpoint_has_no_mask(setup, capsys):
    d, folder, _, lic = setup
    assert _eval(d, folder, lic, "-o", str(d / "lic"), "--mask", "none") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--mask" in err and "lic-tiny.ckpt" in err, err
