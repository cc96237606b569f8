"""Issue 24, case 14: images too small for a metric's network get no value for that metric
instead of ending the whole evaluation; ``hdc compare`` takes every size compress takes."""

from __future__ import annotations

import json

import pytest

from hdc_lightning.cli import main
from tests.helpers.images import save_image
from tests.helpers.models import random_init_checkpoint

HDC_TINY = {"name": "hdc", "preset": "tiny", "args": {}}


@pytest.fixture(scope="module")
def hdc_ckpt(tmp_path_factory):
    return random_init_checkpoint(tmp_path_factory.mktemp("hdc") / "hdc-tiny.ckpt", HDC_TINY, seed=0)


def test_a_tiny_image_does_not_end_the_evaluation(tmp_path, lic_ckpt, capsys):
    data = tmp_path / "img"
    save_image(data / "a.png", 64, 64, seed=0)
    save_image(data / "b.png", 15, 17, seed=1)
    out = tmp_path / "eval"
    argv = ["eval", str(lic_ckpt), "--data", str(data), "-o", str(out), "--baselines", "none", "--no-progress"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "LPIPS needs images of at least" in err
    per_image = json.loads(next((out / "per_image").rglob("*.json")).read_text())["images"]
    assert {r["name"] for r in per_image} == {"a.png", "b.png"}
    small = next(r for r in per_image if r["name"] == "b.png")
    assert "lpips" not in small and small["psnr-rgb"] > 0  # the other metrics are still there
    assert "lpips" in next(r for r in per_image if r["name"] == "a.png")


@pytest.mark.parametrize("size", [(1, 1), (15, 17), (10000, 1)])
def test_compare_takes_the_sizes_compress_takes(tmp_path, hdc_ckpt, capsys, size):
    image = save_image(tmp_path / "im.png", *size, seed=2)
    out = tmp_path / "side.png"
    assert main(["compress", str(image), "--ckpt", str(hdc_ckpt)]) == 0
    assert main(["compare", str(image), "--ckpt", str(hdc_ckpt), "-o", str(out)]) == 0, capsys.readouterr().err
    assert out.is_file() and out.stat().st_size > 0
