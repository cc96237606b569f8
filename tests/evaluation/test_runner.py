"""The evaluation loop on a couple of small images (a JPEG-backed codec object stands in
for load_codec here only; test_integration.py runs the real LIC codec)."""

import json
from typing import NamedTuple

import pytest
import torch
from PIL import Image

from hdc_lightning.errors import CheckpointError, ConfigError
from hdc_lightning.evaluation import classical
from hdc_lightning.evaluation.runner import EvalOptions, run_eval
from hdc_lightning.evaluation.tiling import code_image
from hdc_lightning.rundir import resolve_checkpoints
from tests.helpers.images import synthetic_image
from tests.helpers.models import random_init_checkpoint


class Decoded(NamedTuple):
    image: torch.Tensor


class JpegAsCodec:
    """Same two methods as hdc_lightning.codec.api codecs; real bytes from Pillow."""

    def __init__(self, quality: int):
        self.quality = quality
        self.calls = 0

    def encode(self, image: torch.Tensor) -> bytes:
        self.calls += 1
        return classical.encode(classical.CODECS["jpeg"], classical.to_pil(image), self.quality)

    def decode(self, data: bytes) -> Decoded:
        return Decoded(classical.decode(data))


class ToFloat(torch.nn.Module):
    def forward(self, x):
        return x.float() / 255


def _loader(path):
    return JpegAsCodec(int(path.stem.lstrip("q")))


@pytest.fixture()
def folder(tmp_path):
    d = tmp_path / "imgs"
    (d / "sub").mkdir(parents=True)
    classical.to_pil(synthetic_image(176, 192, seed=4, style="photo")).save(d / "a.png")
    classical.to_pil(synthetic_image(192, 176, seed=5, style="photo")).save(d / "sub" / "b.png")
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    return d


@pytest.fixture()
def small_folder(tmp_path):
    d = tmp_path / "small"
    d.mkdir()
    for i in range(2):  # under 161 px: no MS-SSIM, which keeps this test fast
        classical.to_pil(synthetic_image(96, 128, seed=30 + i, style="photo")).save(d / f"s{i}.png")
    return d


def _ckpts(tmp_path, qualities):
    out = []
    for q in qualities:
        p = tmp_path / f"q{q}.ckpt"
        p.write_bytes(b"")
        out.append(p)
    return out


def test_eval_writes_per_image_and_aggregate_json(tmp_path, folder, capsys):
    out = tmp_path / "out"
    opts = EvalOptions(baselines=["jpeg", "webp"], lpips=False, dists=False, fid=False, progress=False)
    summary = run_eval(
        _ckpts(tmp_path, [60, 15]), folder, out, name="learned", anchor="webp", opts=opts, loader=_loader
    )
    assert [s["name"] for s in summary.skipped] == ["broken.png"]
    assert capsys.readouterr().err.count("skipped unreadable image broken.png") == 1  # once, not per point

    agg = json.loads((out / "learned.json").read_text())
    assert agg["name"] == "learned" and set(agg["results"]) >= {"bpp", "psnr-rgb", "ms-ssim-rgb"}
    bpp = agg["results"]["bpp"]
    assert bpp == sorted(bpp) and len(bpp) == 2 and agg["meta"]["points"] == ["q15", "q60"]
    assert agg["results"]["psnr-rgb"] == sorted(agg["results"]["psnr-rgb"])

    per = json.loads((out / "per_image" / "learned" / "q15.json").read_text())
    assert [r["name"] for r in per["images"]] == ["a.png", "sub/b.png"]
    for r in per["images"]:
        data = classical.encode(classical.CODECS["jpeg"], Image.open(folder / r["name"]).convert("RGB"), 15)
        assert r["bytes"] == len(data) and r["bpp"] == pytest.approx(len(data) * 8 / (r["height"] * r["width"]))
    assert agg["results"]["bpp"][0] == pytest.approx(sum(r["bpp"] for r in per["images"]) / 2)

    # WebP was matched per image to the learned rate of that image.
    webp = json.loads((out / "per_image" / "webp" / "q15.json").read_text())
    for learned, w in zip(per["images"], webp["images"]):
        assert w["target_bpp"] == pytest.approx(learned["bpp"]) and w["bpp"] == pytest.approx(learned["bpp"], rel=0.3)

    bd = json.loads((out / "bd.json").read_text())
    assert bd["anchor"] == "webp" and set(bd["curves"]) == {"learned", "jpeg"}
    row = bd["curves"]["learned"]
    assert "bd-rate[psnr-rgb]" in row or "error[psnr-rgb]" in row
    assert (out / "rd.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_anchor_json_and_bad_anchor(tmp_path, small_folder):
    folder = small_folder
    opts = EvalOptions(lpips=False, dists=False, fid=False, progress=False)
    first = run_eval(_ckpts(tmp_path, [10, 40]), folder, tmp_path / "o1", name="ref", opts=opts, loader=_loader)
    ref_json = tmp_path / "o1" / "ref.json"
    second = run_eval(
        _ckpts(tmp_path, [15, 50]), folder, tmp_path / "o2", name="new", anchor=str(ref_json), opts=opts, loader=_loader
    )
    assert second.bd["anchor"] == "ref" and "bd-rate[psnr-rgb]" in second.bd["curves"]["new"]
    assert first.bd == {}
    with pytest.raises(ConfigError, match="--anchor 'vvc'"):
        run_eval(_ckpts(tmp_path, [10]), folder, tmp_path / "o3", anchor="vvc", opts=opts, loader=_loader)


def test_checkpoint_resolution(tmp_path):
    for run in ("r1", "r2"):
        (tmp_path / "ladder" / run / "checkpoints").mkdir(parents=True)
        (tmp_path / "ladder" / run / "checkpoints" / "last.ckpt").write_bytes(b"")
    assert [p.parent.parent.name for p in resolve_checkpoints([tmp_path / "ladder"])] == ["r1", "r2"]
    assert resolve_checkpoints([tmp_path / "ladder" / "r2"])[0].name == "last.ckpt"
    with pytest.raises(CheckpointError, match="no checkpoint there"):
        resolve_checkpoints([tmp_path / "nothing"])


@pytest.fixture(scope="module")
def tiny_lic_ckpt(tmp_path_factory):
    return random_init_checkpoint(tmp_path_factory.mktemp("lic") / "lic-tiny.ckpt", "lic", seed=0)


def test_one_file_per_image_whatever_its_size(tiny_lic_ckpt):
    """The codec tiles large images itself (tests/codec/test_tiles.py): evaluation counts the
    bytes and tiles of that one file."""
    from hdc_lightning.codec import load_codec

    img = synthetic_image(176, 200, seed=6, style="photo")
    tiled = code_image(load_codec(str(tiny_lic_ckpt), tile=64), img)
    whole = code_image(load_codec(str(tiny_lic_ckpt)), img)
    assert tiled.tiles == 12 and whole.tiles == 1 and tiled.image.shape == whole.image.shape == img.shape
    assert tiled.nbytes > whole.nbytes  # a header per tile, and no context across the borders
    jpeg = code_image(JpegAsCodec(50), img)  # any codec with encode/decode
    assert jpeg.tiles == 1 and jpeg.nbytes == len(JpegAsCodec(50).encode(img))


def test_patch_fid_and_kid_per_rate_point(tmp_path):
    d = tmp_path / "big"
    d.mkdir()
    classical.to_pil(synthetic_image(256, 512, seed=7, style="photo")).save(d / "wide.png")  # two 256-px patches
    torch.manual_seed(0)
    features = torch.nn.Sequential(
        ToFloat(), torch.nn.Conv2d(3, 4, 8, stride=8), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()
    )
    opts = EvalOptions(lpips=False, dists=False, progress=False, baselines=["jpeg"])
    summary = run_eval(_ckpts(tmp_path, [5, 60]), d, tmp_path / "o", opts=opts, loader=_loader, fid_net=features)
    learned = summary.curves[0].results
    assert len(learned["fid"]) == 2 and len(learned["kid"]) == 2
    assert learned["fid"][0] > learned["fid"][1] >= 0  # the coarser rate point is further from the originals
    assert summary.curves[1].has("fid")
