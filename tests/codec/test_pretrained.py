"""The shipped `small` model: loads by name, round-trips deterministically, fails in one line."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from hdc_lightning import pretrained
from hdc_lightning.codec import load_codec
from hdc_lightning.errors import CheckpointError
from tests.helpers.images import synthetic_image


@pytest.fixture(scope="module")
def small():
    return load_codec("small")


def test_shipped_model_is_weights_only_and_small_enough():
    path = pretrained.weights_path("small")
    assert (
        path.stat().st_size <= 30 * 2**20
    )  # float16 weights (the perceptual decoder 4.7 MB) + the integer entropy tables
    obj = torch.load(path, map_location="cpu", weights_only=True)
    assert set(obj) == {"state_dict", "hyper_parameters"}
    assert obj["hyper_parameters"]["cfg"]["model"]["preset"] == "small"
    assert pretrained.card_path("small").is_file()


def test_round_trip_is_deterministic(small):
    # What every machine must decode alike is pinned in test_golden_files.py; the bytes an
    # encoder writes depend on its CPU's analysis transform, so they are not pinned.
    image = synthetic_image(96, 128, seed=3)
    data = small.encode(image)
    assert data == small.encode(image)
    a, b = small.decode(data), small.decode(data)
    assert torch.equal(a.image, b.image) and a.image.shape == image.shape
    fidelity = small.decode(data, output="fidelity").image
    assert fidelity.shape == image.shape and not torch.equal(fidelity, a.image)


def test_unknown_name_lists_the_shipped_models():
    with pytest.raises(CheckpointError, match="unknown pretrained model 'big'; shipped: small"):
        load_codec("big") if pretrained.is_pretrained("big") else pretrained.weights_path("big")


def test_missing_or_corrupt_shipped_file_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained, "HERE", tmp_path)
    with pytest.raises(CheckpointError) as err:
        load_codec("small")
    assert str(tmp_path / "small.pt") in str(err.value) and "\n" not in str(err.value)
    (tmp_path / "small.pt").write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError) as err:
        load_codec("small")
    assert str(tmp_path / "small.pt") in str(err.value) and "\n" not in str(err.value)


def test_cli_uses_the_shipped_model_by_default(tmp_path):
    from PIL import Image

    src = tmp_path / "im.png"
    Image.fromarray((synthetic_image(64, 80, seed=4).permute(1, 2, 0) * 255).byte().numpy()).save(src)
    hdc = [sys.executable, "-m", "hdc_lightning"]
    subprocess.run([*hdc, "compress", str(src), "-o", str(tmp_path / "im.hdc")], check=True, capture_output=True)
    subprocess.run(
        [*hdc, "decompress", str(tmp_path / "im.hdc"), "-o", str(tmp_path / "out.png")], check=True, capture_output=True
    )
    assert Image.open(tmp_path / "out.png").size == (80, 64)


def test_compare_writes_a_side_by_side_and_never_its_input(tmp_path):
    from PIL import Image

    src = tmp_path / "im.png"
    Image.fromarray((synthetic_image(64, 80, seed=5).permute(1, 2, 0) * 255).byte().numpy()).save(src)
    hdc = [sys.executable, "-m", "hdc_lightning", "compare", str(src)]
    for _ in range(2):  # a rerun replaces its own figure without --force
        subprocess.run([*hdc, "-o", str(tmp_path / "side.png")], check=True, capture_output=True)
    assert Image.open(tmp_path / "side.png").width == 3 * 80 + 2 * 6
    bad = subprocess.run([*hdc, "-o", str(src)], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "is also an input" in bad.stderr
