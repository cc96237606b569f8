"""The raw shard format (``<key>.rgb8``): exact round trip, corrupt payloads skipped and
counted, raw/png/jpg samples mixed in one stream, ``hdc shards --format``."""

from __future__ import annotations

import io
import struct
from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image

from hdc_lightning.cli import main
from hdc_lightning.data.images import CorruptImage, decode_raw, encode_raw, read_rgb
from hdc_lightning.data.shards import write_shards
from hdc_lightning.data.webdataset import ShardStream, _Skips, decode_sample, expand_shards, read_shard
from tests.helpers.datasets import sample_id, write_tar
from tests.helpers.images import save_image, solid_png


def raw_bytes(value: int, h: int = 32, w: int = 32) -> bytes:
    return encode_raw(np.full((h, w, 3), value, np.uint8))


def test_raw_round_trip_gives_the_exact_pixels_of_every_source_format(tmp_path):
    src = tmp_path / "src"
    save_image(src / "noise.png", 37, 53, seed=1)
    save_image(src / "photo.jpg", 40, 24, seed=2, fmt="JPEG")
    save_image(src / "one_row.png", 1, 9, seed=3)
    Image.fromarray(np.random.default_rng(4).integers(0, 256, (20, 30), np.uint8)).save(src / "grey.png")
    raw = write_shards(src, tmp_path / "raw", progress=False, fmt="raw")
    png = write_shards(src, tmp_path / "png", progress=False, fmt="png")
    assert raw.fmt == "raw" and "(raw, " in raw.summary() and raw.source_bytes == png.total_bytes
    got = {s["__key__"]: s for s in read_shard(str(raw.shards[0]), _Skips())}
    assert all(set(s) == {"__key__", "__url__", "rgb8"} for s in got.values())
    from_png = {s["__key__"]: decode_sample(s) for s in read_shard(str(png.shards[0]), _Skips())}
    for name in ("noise.png", "photo.jpg", "one_row.png", "grey.png"):
        key = name.rsplit(".", 1)[0]
        image = decode_sample(got[key])
        assert image.dtype == torch.uint8 and image.shape[0] == 3
        assert torch.equal(image, read_rgb(src / name))  # what a png/jpg shard decodes to, bit for bit
        assert torch.equal(image, from_png[key])
    # the payload is a 12-byte header and the pixels, nothing else
    assert len(got["noise"]["rgb8"]) == 12 + 37 * 53 * 3
    x = torch.randint(0, 256, (3, 5, 7), dtype=torch.uint8)
    assert torch.equal(decode_raw(encode_raw(x)), x) and torch.equal(decode_raw(bytearray(encode_raw(x))), x)


BAD_RAW = {
    "empty": b"",
    "short_header": b"RGB8\x01\x00",
    "wrong_magic": b"RGBA" + raw_bytes(5)[4:],
    "png_as_raw": solid_png(5),
    "truncated": raw_bytes(5)[:-1],
    "trailing_bytes": raw_bytes(5) + b"\x00",
    "zero_width": struct.pack("<4sII", b"RGB8", 4, 0),
    # 4 G x 4 G pixels declared in a few bytes: must be rejected, not allocated
    "huge": struct.pack("<4sII", b"RGB8", 2**32 - 1, 2**32 - 1) + b"\x07" * 30,
}


@pytest.mark.parametrize("name", sorted(BAD_RAW))
def test_corrupt_raw_payloads_are_one_line_errors(name):
    with pytest.raises(CorruptImage) as err:
        decode_raw(BAD_RAW[name])
    assert "\n" not in str(err.value) and str(err.value)


def test_corrupt_raw_samples_are_skipped_and_counted_in_the_stream(tmp_path):
    members = [("good1.rgb8", raw_bytes(1))]
    members += [(f"{name}.rgb8", data) for name, data in BAD_RAW.items()]
    members += [("good2.rgb8", raw_bytes(2, 20, 40))]
    write_tar(tmp_path / "bad.tar", members)
    stream = ShardStream(
        [str(tmp_path / "bad.tar")], crop=32, batch_size=1, batches_per_epoch=2, resampled=False, shuffle_buffer=0
    )
    batches = list(stream)
    assert sorted(sample_id(b.images[0]) for b in batches) == [1, 2]
    assert sum(int(b.skipped) for b in batches) == len(BAD_RAW)


def test_a_tar_header_declaring_gigabytes_is_a_counted_skip(tmp_path):
    import tarfile

    info = tarfile.TarInfo("big.rgb8")
    info.size = 3 << 30  # the data behind it is 100 kB: read up to the end, never allocated up front
    (tmp_path / "lie.tar").write_bytes(info.tobuf() + raw_bytes(3)[:12] + bytes(100_000))
    skips = _Skips()
    assert list(read_shard(str(tmp_path / "lie.tar"), skips)) == [] and skips.total == 1


def test_raw_png_and_jpg_samples_stream_together(tmp_path):
    src_png, src_raw = tmp_path / "a", tmp_path / "b"
    for i in range(8):
        save_image((src_png if i < 4 else src_raw) / f"s{i}.png", 32, 32, value=(i, 100, 200))
    png = write_shards(src_png, tmp_path / "shards", prefix="png", max_samples=2, progress=False, fmt="png")
    raw = write_shards(src_raw, tmp_path / "shards", prefix="raw", max_samples=2, progress=False, fmt="raw")
    grey = io.BytesIO()
    Image.fromarray(np.full((32, 32, 3), 9, np.uint8)).save(grey, format="JPEG", quality=95)
    write_tar(tmp_path / "shards" / "mixed-0.tar", [("m8.rgb8", raw_bytes(8)), ("m9.jpg", grey.getvalue())])
    write_tar(tmp_path / "shards" / "mixed-1.tar", [("m10.png", solid_png(10)), ("m11.rgb8", raw_bytes(11))])
    pattern = f"{png.pattern}::{raw.pattern}::{tmp_path / 'shards' / 'mixed-{0..1}.tar'}"
    urls = expand_shards(pattern)
    assert len(urls) == 6
    stream = ShardStream(urls, crop=32, batch_size=2, batches_per_epoch=6, resampled=False, shuffle_buffer=4)
    loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=2)
    ids = Counter(sample_id(img) for batch in loader for img in batch.images)
    assert sorted(ids) == list(range(12)) and set(ids.values()) == {1}  # each once, whatever its format


def test_cli_format_option(tmp_path, capsys):
    for i in range(3):
        save_image(tmp_path / "src" / f"{i}.png", 16, 24, seed=i)
    assert main(["shards", str(tmp_path / "src"), str(tmp_path / "png"), "--format", "png", "--quiet"]) == 0
    assert "(png, 1.00x the source files)" in capsys.readouterr().out
    assert main(["shards", str(tmp_path / "src"), str(tmp_path / "raw"), "--quiet"]) == 0  # raw by default
    assert "(raw, " in capsys.readouterr().out
    [png_sample] = list(read_shard(str(tmp_path / "png" / "train-000000.tar"), _Skips()))[:1]
    [raw_sample] = list(read_shard(str(tmp_path / "raw" / "train-000000.tar"), _Skips()))[:1]
    assert "png" in png_sample and "rgb8" in raw_sample
    assert torch.equal(decode_sample(png_sample), decode_sample(raw_sample))
    with pytest.raises(SystemExit) as exit_:
        main(["shards", str(tmp_path / "src"), str(tmp_path / "x"), "--format", "webp"])
    assert exit_.value.code == 2 and "invalid choice" in capsys.readouterr().err
