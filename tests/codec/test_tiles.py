"""Tiled files (codec.tiles): an image over the one-piece limit is a grid of ordinary files.

Real tiny codecs with seeded weights; every byte counted from the file.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from hdc_lightning.codec import load_codec, pack, unpack
from hdc_lightning.codec.container import MAX_TILE_PIXELS, TILED_KIND, Limits
from hdc_lightning.codec.tiles import DEFAULT_TILE, MIN_TILE, is_tiled, plan, tile_boxes, tile_count
from hdc_lightning.errors import BitstreamError, ConfigError, DataError
from tests.helpers.images import synthetic_image
from tests.helpers.models import random_init_checkpoint
from tests.helpers.reliability import check_one_line


@pytest.fixture(scope="module")
def hdc_ckpt(tmp_path_factory):
    spec = {"name": "hdc", "preset": "tiny", "args": {}}
    return random_init_checkpoint(tmp_path_factory.mktemp("hdc") / "hdc-tiny.ckpt", spec, seed=0)


def test_boxes_cover_the_image_evenly():
    boxes = tile_boxes(176, 200, 64)
    cover = torch.zeros(176, 200)
    for t, x, h, w in boxes:
        cover[t : t + h, x : x + w] += 1
        assert h <= 64 and w <= 64 and min(h, w) >= 44  # even split: no slivers
    assert torch.all(cover == 1) and len(boxes) == 3 * 4


def test_the_plan_tiles_only_what_one_piece_cannot_hold():
    limits = Limits()
    assert plan(2048, 2048, None, limits) is None  # CLIC's largest fits one piece
    assert plan(3000, 2000, None, limits) == DEFAULT_TILE
    assert plan(100, 100, 128, limits) is None and plan(300, 100, 128, limits) == 128
    assert plan(300, 100, 0, limits) is None
    with pytest.raises(DataError, match="code it in tiles"):
        plan(2049, 2048, 0, limits)
    with pytest.raises(ConfigError, match=f"{MIN_TILE}..2048"):
        plan(300, 300, 2049, limits)  # a tile must fit a file of one piece
    with pytest.raises(ConfigError, match="at most 64; give a larger tile"):
        plan(4096, 4096, 64, limits)
    # the default tile keeps every image the format admits within its stream count
    worst = len(tile_boxes(2049, 16376, DEFAULT_TILE))
    assert 2049 * 16376 <= limits.max_pixels and worst <= limits.max_streams


@pytest.mark.parametrize("which", ["lic", "hdc"])
def test_a_tiled_file_decodes_each_box_as_its_own_file(tiny_ckpt, hdc_ckpt, which):
    ckpt = tiny_ckpt if which == "lic" else hdc_ckpt
    tiled, whole = load_codec(str(ckpt), tile=64), load_codec(str(ckpt), tile=0)
    img = synthetic_image(100, 150, seed=3, style="photo")
    data = tiled.encode(img)
    boxes = tile_boxes(100, 150, 64)
    assert is_tiled(data) and tile_count(data) == len(boxes) == 6
    out = tiled.decode(data, source="t.hdc")
    assert out.image.shape == img.shape
    assert sum(out.stream_bytes.values()) + out.header_bytes == len(data)  # every byte accounted for
    for top, left, h, w in boxes:  # bit-exact: a tile is the one-piece coding of its box
        piece = whole.encode(img[:, top : top + h, left : left + w].contiguous())
        assert torch.equal(whole.decode(piece).image, out.image[:, top : top + h, left : left + w])
    assert not is_tiled(whole.encode(img)) and tile_count(whole.encode(img)) == 1


def test_large_images_are_tiled_by_default(tiny_ckpt):
    limits = Limits(max_tile_pixels=96 * 96)  # the format's rule at a size a test can afford
    codec = load_codec(str(tiny_ckpt), limits=limits)
    assert not is_tiled(codec.encode(synthetic_image(96, 96, seed=0)))
    data = codec.encode(synthetic_image(96, 200, seed=0))
    assert is_tiled(data) and tile_count(data) == 3  # tiles of min(1024, 96)
    assert codec.decode(data).image.shape == (3, 96, 200)


def _tiled_fields(data: bytes):
    c = unpack(data)
    return c.header, c.streams


def _repack(header, original, **change) -> bytes:
    """The tiled file with ``change`` (params, model_id, or tiles) applied, CRC made valid."""
    tiles = change.pop("tiles", original)
    h = replace(header, **change)
    return pack(TILED_KIND, h.model_id, h.height, h.width, tiles, params=h.params)


def test_forged_tiled_files_give_one_line(tiny_ckpt, other_ckpt):
    codec = load_codec(str(tiny_ckpt), tile=64)
    data = codec.encode(synthetic_image(100, 140, seed=4))  # boxes 50 high, 47 | 46 | 47 wide
    header, streams = _tiled_fields(data)
    foreign = load_codec(str(other_ckpt), tile=0).encode(synthetic_image(50, 47, seed=0))
    cases = {
        "too few tiles": (_repack(header, streams, tiles=streams[:-1]), "5 tiles"),
        "tile size under the minimum": (_repack(header, streams, params=header.params[:2] + b"\x10"), "tile size 16"),
        "bad tile params": (_repack(header, streams, params=b"\x07\x01\x40"), "malformed tile parameters"),
        "a tile of another size": (_repack(header, streams, tiles=[streams[1]] + streams[1:]), "its box is"),
        "a tile of other weights": (_repack(header, streams, tiles=[foreign] + streams[1:]), "tile 1 of 6"),
        "other weights": (_repack(header, streams, model_id=bytes(8)), "decode it with the checkpoint"),
        "a tile's CRC": (_repack(header, streams, tiles=[streams[0][:-1] + b"\0"] + streams[1:]), "CRC mismatch"),
    }
    for name, (forged, needle) in cases.items():
        with pytest.raises(BitstreamError) as err:
            codec.decode(forged, source="f.hdc")
        msg = str(err.value)
        check_one_line(msg, "f.hdc")
        assert msg.startswith("f.hdc") and needle in msg, (name, msg)


def test_one_piece_over_the_tile_limit_is_refused_from_the_header(tiny_ckpt):
    codec = load_codec(str(tiny_ckpt), tile=0)
    c = unpack(codec.encode(synthetic_image(64, 64, seed=0)))
    h = c.header
    forged = pack(h.kind, h.model_id, 4096, 1025, c.streams, limits=Limits(max_tile_pixels=1 << 23))
    with pytest.raises(BitstreamError, match=f"in one piece exceeds the {MAX_TILE_PIXELS}-pixel limit"):
        codec.decode(forged, source="big.hdc")
    with pytest.raises(BitstreamError, match="in one piece exceeds"):
        pack(h.kind, h.model_id, 4096, 1025, c.streams)  # and no writer makes one


def test_decode_full_says_a_tiled_file_is_decoded_whole(hdc_ckpt):
    codec = load_codec(str(hdc_ckpt), tile=64)
    data = codec.encode(synthetic_image(64, 130, seed=1))
    with pytest.raises(BitstreamError, match="a tiled file"):
        codec.decode_full(data, source="t.hdc")
    fidelity = codec.decode(data, output="fidelity").image
    assert fidelity.shape == (3, 64, 130) and not torch.equal(fidelity, codec.decode(data).image)


def test_the_cli_writes_and_reads_tiled_files(tmp_path, hdc_ckpt, capsys):
    from hdc_lightning.cli import main
    from hdc_lightning.codec.imageio import read_image
    from tests.helpers.images import save_image

    image = save_image(tmp_path / "wide.png", 64, 150, seed=5)
    out = tmp_path / "wide.hdc"
    assert main(["compress", str(image), "--ckpt", str(hdc_ckpt), "--tile", "64", "-o", str(out)]) == 0
    assert tile_count(out.read_bytes()) == 3
    assert main(["decompress", str(out), "--ckpt", str(hdc_ckpt)]) == 0
    assert read_image(tmp_path / "wide.decoded.png").shape == (3, 64, 150)
    side = tmp_path / "side.png"
    assert main(["compare", str(image), "--ckpt", str(hdc_ckpt), "--tile", "64", "-o", str(side)]) == 0
    assert "bpp" in capsys.readouterr().out and side.stat().st_size > 0
    assert main(["compress", str(image), "--ckpt", str(hdc_ckpt), "--tile", "63", "-o", str(out)]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    check_one_line(line)
    assert "--tile must be 0 (never) or 64..2048" in line
