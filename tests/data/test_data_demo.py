"""Embedded demo data: built offline from photos bundled in scikit-image / scikit-learn."""

from __future__ import annotations

import random

from hdc_lightning.data import demo
from hdc_lightning.data.images import read_rgb
from hdc_lightning.data.webdataset import _Skips, decode_sample, expand_shards, read_shard


def test_demo_data_layout_sizes_and_separate_val_photos(tmp_path):
    report = demo.build_demo_data(tmp_path / "demo")
    urls = expand_shards(str(tmp_path / "demo" / "train-{000000..000003}.tar"))
    assert report.pattern.endswith("train-{000000..000003}.tar") and len(urls) == 4
    keys, sizes = [], []
    for url in urls:
        for sample in read_shard(url, _Skips()):
            keys.append(sample["__key__"])
            assert set(sample) == {"__key__", "__url__", "rgb8"}  # the fast raw format
            sizes += decode_sample(sample).shape[1:]
    assert len(keys) == report.train_samples == len(demo.TRAIN_PHOTOS) * demo.CROPS_PER_PHOTO
    assert min(sizes) >= 256 and max(sizes) <= 384
    val = sorted(p.name for p in (tmp_path / "demo" / "val").iterdir())
    assert val == ["chelsea.png", "flower.png", "rocket.png"]
    assert all(max(read_rgb(p).shape[1:]) <= demo.VAL_SIDE for p in report.val_images)
    train_photos = {k.rsplit("_", 1)[0] for k in keys}
    assert not train_photos & {v[:-4] for v in val}  # validation photos never appear in training
    assert "CC BY 2.0" in (tmp_path / "demo" / "SOURCES.txt").read_text()


def test_views_are_deterministic():
    photo = demo._open_rgb("sklearn", "datasets/images/china.jpg")
    a = [(k, v.size, v.tobytes()[:64]) for k, v in demo._random_views(photo, "china", 3, random.Random(0))]
    b = [(k, v.size, v.tobytes()[:64]) for k, v in demo._random_views(photo, "china", 3, random.Random(0))]
    assert a == b
