"""Issue 24, case 14: images too small for a metric's network get no value for that metric
instead of ending the whole evaluation; ``hdc compare`` takes every size compress takes."""

from __future__ import annotations

import contextlib
import io
import json
import struct
import zlib

import pytest
import torch
from PIL import Image

from hdc_lightning.cli import main
from hdc_lightning.data.images import ImageTooLarge, decode_rgb, read_rgb
from hdc_lightning.data.shards import write_shards
from tests.helpers.images import save_image
from tests.helpers.models import random_init_checkpoint
from tests.helpers.reliability import check_one_line, peak_rss, peak_rss_supported

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


# ---- case 8: one pixel budget, read from the header, before any decode ---------------------
def _forged_jpeg(side: int) -> bytes:
    """A few hundred bytes whose JPEG header declares side x side pixels."""
    buf = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buf, "JPEG")
    data = bytearray(buf.getvalue())
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = side.to_bytes(2, "big") * 2
    return bytes(data)


def _forged_png(side: int) -> bytes:
    """A valid PNG signature and IHDR declaring side x side pixels, and a tiny IDAT."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("forge, name", [(_forged_jpeg, "bomb.jpg"), (_forged_png, "bomb.png")])
def test_forged_headers_are_refused_before_decoding(tmp_path, forge, name):
    data = forge(30000)
    assert len(data) < 1000
    with pytest.raises(ImageTooLarge, match="858.3 Mpx, over the limit of 64.0 Mpx"):
        decode_rgb(data)
    src = tmp_path / "src"
    src.mkdir()
    (src / name).write_bytes(data)
    save_image(src / "ok.png", 32, 32, seed=0)
    grew: list[int] = []
    with peak_rss(grew) if peak_rss_supported() else contextlib.nullcontext():
        report = write_shards(src, tmp_path / "out", progress=False, fmt="raw")
    assert report.written == 1 and report.skipped[0][0] == name and "over the limit" in report.skipped[0][1]
    assert sum(p.stat().st_size for p in report.shards) < 1 << 20
    assert all(g < 200 * 2**20 for g in grew)  # nothing near the 2.7 GB the header asks for


def test_eval_and_the_folder_loader_skip_a_forged_jpeg(tmp_path, lic_ckpt, capsys):
    data = tmp_path / "img"
    save_image(data / "a.png", 64, 64, seed=0)
    (data / "bomb.jpg").write_bytes(_forged_jpeg(12000))
    out = tmp_path / "eval"
    argv = ["eval", str(lic_ckpt), "--data", str(data), "-o", str(out), "--baselines", "none", "--no-progress"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "bomb.jpg" in err and "12000x12000" in err
    with pytest.raises(ImageTooLarge):
        read_rgb(data / "bomb.jpg")


# ---- case 10: a checkpoint's model spec is checked before anything is allocated -------------
def _with_spec(src, dst, args: dict):
    ckpt = torch.load(src, map_location="cpu", weights_only=True)
    ckpt["hyper_parameters"]["cfg"]["model"]["args"] = args
    torch.save(ckpt, dst)
    return dst


@pytest.mark.parametrize(
    "args, needle",
    [
        ({"N": 60000, "M": 60000, "Nh": 60000, "groups": [30000, 30000]}, "asks for"),  # tens of GB if built
        ({"N": -3}, "cannot be built"),
        ({"M": "x"}, "model"),
        ({"groups": [16, 48, 9999]}, "model"),
    ],
)
def test_a_forged_model_spec_is_refused_before_it_is_built(tmp_path, lic_ckpt, capfd, args, needle):
    forged = _with_spec(lic_ckpt, tmp_path / "forged.ckpt", args)
    grew: list[int] = []
    with peak_rss(grew) if peak_rss_supported() else contextlib.nullcontext():
        code = main(["compress", str(save_image(tmp_path / "a.png", 32, 32, seed=0)), "--ckpt", str(forged)])
    err = capfd.readouterr().err
    lines = [ln for ln in err.splitlines() if ": error: " in ln]
    assert code == 2 and len(lines) == 1, err[-2000:]
    check_one_line(lines[0])
    assert str(forged) in lines[0] and needle in lines[0], lines[0]
    assert all(g < 500 * 2**20 for g in grew)


# ---- case 9: attention memory grows with the tokens, not their square ------------------------
def test_the_index_predictor_attention_is_exact_and_bounded():
    from hdc_lightning.models.fusion.predictor import attend

    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(64, 4, batch_first=True).eval()
    x, m = torch.randn(2, 40, 64), torch.randn(2, 30, 64)
    with torch.no_grad():
        assert torch.allclose(attend(mha, x, m), mha(x, m, m, need_weights=False)[0], atol=1e-6)
        tokens = torch.randn(1, 16384, 64)  # a 4-Mpx image at 1/16
        grew: list[int] = []
        with peak_rss(grew) if peak_rss_supported() else contextlib.nullcontext():
            attend(mha, tokens, tokens)
    # torch's fused MultiheadAttention holds 4 heads x 16384² floats here: 4 GiB
    assert all(g < 256 * 2**20 for g in grew)


# ---- case 9: a large image is decoded one tile at a time ---------------------------------------
def test_a_tiled_decode_holds_one_tile_at_a_time(hdc_ckpt):
    """The format's rule (files of one piece up to Limits.max_tile_pixels, tiles beyond) at a
    size a test affords: decoding 8 tiles takes about what one tile takes, plus the output;
    the same image in one piece takes several times more (docs/format.md#tiled-files)."""
    from hdc_lightning.codec import Limits, load_codec
    from hdc_lightning.codec.tiles import tile_count
    from tests.helpers.images import synthetic_image

    tiled = load_codec(str(hdc_ckpt), limits=Limits(max_tile_pixels=256 * 256))
    whole = load_codec(str(hdc_ckpt), tile=0)
    big, one = synthetic_image(512, 1024, seed=3), synthetic_image(256, 256, seed=4)
    files = {"one tile": tiled.encode(one), "tiled": tiled.encode(big), "whole": whole.encode(big)}
    assert tile_count(files["tiled"]) == 8 and tile_count(files["whole"]) == 1
    if not peak_rss_supported():
        pytest.skip("needs /proc/self/clear_refs to measure peak memory")
    grew: dict[str, int] = {}
    for name, data in files.items():
        codec = tiled if name != "whole" else whole
        codec.decode(data)  # warm-up: lazy init, allocator pools
        peaks: list[int] = []
        for _ in range(3):  # the least of three: the allocator's layout varies run to run by tens of MiB
            with peak_rss(peaks):
                codec.decode(data)
        grew[name] = min(peaks)
    canvas = 3 * 512 * 1024 * 4
    assert grew["tiled"] < grew["one tile"] + 2 * canvas + (32 << 20), grew
    assert grew["whole"] > 2 * grew["tiled"], grew
