"""`write_shards`: counts, shard limits, kept bytes, resize/crop, unreadable files, errors."""

from __future__ import annotations

import tarfile

import pytest
import torch
from PIL import Image

from hdc_lightning.data.shards import write_shards
from hdc_lightning.data.webdataset import _Skips, decode_sample, read_shard
from hdc_lightning.errors import DataError
from tests.helpers.images import save_image


def members(path):
    with tarfile.open(path) as tar:
        return [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]


def test_counts_limits_and_report_of_unreadable_files(tmp_path):
    src = tmp_path / "src"
    for i in range(7):
        save_image(src / f"img{i}.png", 20, 30, seed=i)
    save_image(src / "sub" / "deep.jpg", 24, 24, fmt="JPEG")
    (src / "empty.png").write_bytes(b"")
    (src / "notes.jpg").write_text("not an image at all")
    good = (src / "img0.png").read_bytes()
    (src / "sub" / "cut.png").write_bytes(good[: len(good) // 2])
    (src / "readme.txt").write_text("ignored: not an image suffix")

    report = write_shards(src, tmp_path / "out", max_samples=3, progress=False)

    assert report.written == 8
    assert [p.name for p in report.shards] == ["train-000000.tar", "train-000001.tar", "train-000002.tar"]
    assert report.pattern == str(tmp_path / "out" / "train-{000000..000002}.tar")
    assert sorted(name for name, _ in report.skipped) == ["empty.png", "notes.jpg", "sub/cut.png"]
    text = report.summary()
    assert "wrote 8 images into 3 shard(s)" in text and "sub/cut.png" in text and "empty.png" in text
    names = [n for shard in report.shards for n, _ in members(shard)]
    assert names[0] == "img0.rgb8" and "sub/deep.rgb8" in names and len(names) == 8  # raw by default
    assert not list((tmp_path / "out").glob("*.tmp"))  # shards are renamed into place when complete


def test_png_format_keeps_original_bytes_without_resize(tmp_path):
    src = tmp_path / "src"
    png = save_image(src / "a.png", 16, 16, seed=1).read_bytes()
    jpg = save_image(src / "b.jpeg", 16, 16, seed=2, fmt="JPEG").read_bytes()
    save_image(src / "c.bmp", 8, 8, seed=3, fmt="BMP")
    report = write_shards(src, tmp_path / "out", progress=False, fmt="png")
    stored = dict(members(report.shards[0]))
    assert stored["a.png"] == png and stored["b.jpg"] == jpg
    assert stored["c.png"].startswith(b"\x89PNG")  # other formats are re-encoded as PNG


def test_resize_and_center_crop_give_square_images_in_both_formats(tmp_path):
    src = tmp_path / "src"
    save_image(src / "wide.jpg", 200, 300, seed=1, fmt="JPEG")
    save_image(src / "small.png", 40, 40, seed=2)
    report = write_shards(src, tmp_path / "out", resize=100, center_crop=96, progress=False, fmt="png")
    assert report.written == 1
    assert report.skipped == [("small.png", "40x40 is smaller than --center-crop 96")]
    sample = next(read_shard(str(report.shards[0]), _Skips()))
    assert sample["__key__"] == "wide" and set(sample) == {"__key__", "__url__", "png"}
    import io

    assert Image.open(io.BytesIO(sample["png"])).size == (96, 96)
    raw = write_shards(src, tmp_path / "raw", resize=100, center_crop=96, progress=False, fmt="raw")
    raw_sample = next(read_shard(str(raw.shards[0]), _Skips()))
    assert set(raw_sample) == {"__key__", "__url__", "rgb8"}
    assert torch.equal(decode_sample(raw_sample), decode_sample(sample))  # the same pixels, losslessly


def test_max_bytes_and_keys_without_dots_and_unique(tmp_path):
    src = tmp_path / "src"
    for name in ("x.v1.png", "x_v1.png", "y.png", "y.jpg"):
        save_image(src / name, 32, 32, seed=len(name), fmt="JPEG" if name.endswith("jpg") else None)
    size = max(p.stat().st_size for p in src.iterdir())
    report = write_shards(src, tmp_path / "out", max_bytes=2 * (size + 1024) + 1024, progress=False)
    assert len(report.shards) == 2 and report.written == 4
    keys = [s["__key__"] for shard in report.shards for s in read_shard(str(shard), _Skips())]
    assert len(keys) == 4 and len(set(keys)) == 4 and not any("." in k for k in keys)


def test_no_recursive(tmp_path):
    save_image(tmp_path / "src" / "top.png", 8, 8)
    save_image(tmp_path / "src" / "sub" / "low.png", 8, 8)
    report = write_shards(tmp_path / "src", tmp_path / "out", recursive=False, progress=False)
    assert report.written == 1


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.mkdir(), "no image files"),
        (lambda p: (p.mkdir(), (p / "bad.png").write_bytes(b"xx")), "no readable images"),
        (lambda p: p.write_text("a file"), "is not a folder"),
    ],
)
def test_errors_are_one_line(tmp_path, setup, message):
    src = tmp_path / "src"
    setup(src)
    with pytest.raises(DataError) as err:
        write_shards(src, tmp_path / "out", progress=False)
    assert message in str(err.value) and "\n" not in str(err.value)
