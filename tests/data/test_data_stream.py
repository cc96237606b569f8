"""The WebDataset training stream: exact epochs over ranks x workers, resampling seeds,
nominal epoch length, corrupt samples, shard patterns."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from hdc_lightning.data.config import TrainDataConfig
from hdc_lightning.data.webdataset import ShardDataModule, ShardStream, expand_shards
from hdc_lightning.errors import DataError
from tests.helpers.datasets import sample_id, write_tar
from tests.helpers.images import solid_png


def batches_of(shards: str, rank: int, world: int, epochs: int = 1, **kw) -> list[list[list[int]]]:
    """Sample ids of every batch a simulated rank yields, per epoch."""
    cfg = TrainDataConfig(**{"shards": shards, "crop": 32, **kw})
    dm = ShardDataModule(cfg, seed=7, rank=rank, world_size=world)
    dm.setup("fit")
    loader = dm.train_dataloader()
    out = []
    for _ in range(epochs):
        epoch = []
        for batch in loader:
            assert batch.images.shape == (cfg.batch_size, 3, 32, 32) and batch.images.dtype == torch.float32
            epoch.append([sample_id(img) for img in batch.images])
        out.append(epoch)
    return out


def test_exact_mode_sees_every_sample_once_per_epoch_across_2_ranks_x_2_workers(tagged_shards):
    kw = dict(resampled=False, batch_size=3, batches_per_epoch=4, num_workers=2, shuffle_buffer=8)
    per_rank = [batches_of(tagged_shards, rank, 2, epochs=2, **kw) for rank in (0, 1)]
    for epoch in range(2):
        ids = Counter(i for rank in per_rank for batch in rank[epoch] for i in batch)
        assert sorted(ids) == list(range(24)) and set(ids.values()) == {1}
        assert all(len(rank[epoch]) == 4 for rank in per_rank)
    # each rank owns its own shards (split by node first)
    assert not {i for b in per_rank[0][0] for i in b} & {i for b in per_rank[1][0] for i in b}


def test_resampled_ranks_and_workers_differ_and_epoch_length_is_fixed(tagged_shards):
    kw = dict(resampled=True, batch_size=4, batches_per_epoch=5, num_workers=2, shuffle_buffer=8)
    torch.manual_seed(0)
    r0 = batches_of(tagged_shards, 0, 2, **kw)[0]
    torch.manual_seed(0)
    r1 = batches_of(tagged_shards, 1, 2, **kw)[0]
    torch.manual_seed(0)
    again = batches_of(tagged_shards, 0, 2, **kw)[0]
    assert len(r0) == len(r1) == 5  # 3 + 2 batches from the two workers: no DDP hang
    assert r0 != r1  # different ranks, different streams
    assert r0[0::2][:2] != r0[1::2]  # the DataLoader alternates workers 0 and 1
    assert again == r0  # same seeds, same stream
    assert all(0 <= i < 24 for b in r0 + r1 for i in b)


def test_corrupt_samples_are_skipped_and_counted(tmp_path):
    write_tar(
        tmp_path / "bad-0.tar",
        [
            ("a.png", solid_png(1)),
            ("zero.png", b""),
            ("junk.png", b"definitely not a PNG"),
            ("notes.txt", b"a sample without an image"),
            ("b.png", solid_png(2)),
        ],
    )
    write_tar(tmp_path / "bad-1.tar", [("c.png", solid_png(3)), ("d.png", solid_png(4))])
    whole = (tmp_path / "bad-1.tar").read_bytes()
    (tmp_path / "bad-1.tar").write_bytes(whole[: 512 * 3 + 40])  # cut inside d.png's data
    stream = ShardStream(
        expand_shards(str(tmp_path / "bad-{0..1}.tar")),
        crop=32,
        batch_size=1,
        batches_per_epoch=3,
        resampled=False,
        shuffle_buffer=16,
    )
    batches = list(stream)
    assert sorted(sample_id(b.images[0]) for b in batches) == [1, 2, 3]
    assert sum(int(b.skipped) for b in batches) == 4  # zero-byte, non-image, no image member, truncated
    assert all(b.skipped.dtype == torch.long and b.skipped.ndim == 0 for b in batches)


def test_small_images_are_padded_to_the_crop(tmp_path):
    write_tar(tmp_path / "s.tar", [("tiny.png", solid_png(9, size=8))])
    batch = next(
        iter(
            ShardStream(
                [str(tmp_path / "s.tar")], crop=40, batch_size=2, batches_per_epoch=1, resampled=True, shuffle_buffer=0
            )
        )
    )
    assert batch.images.shape == (2, 3, 40, 40)
    assert torch.allclose(batch.images, torch.full_like(batch.images, 9 / 255))


def test_unreadable_shards_in_a_row_stop_with_one_line(tmp_path):
    (tmp_path / "x.tar").write_bytes(b"garbage" * 100)
    stream = ShardStream([str(tmp_path / "x.tar")], crop=8, batch_size=1, batches_per_epoch=1, resampled=True)
    with pytest.raises(DataError, match="no readable image in 20 shard"):
        next(iter(stream))


def test_patterns_braces_globs_pipes_and_missing_files(tagged_shards, tmp_path):
    urls = expand_shards(tagged_shards)
    assert len(urls) == 4 and urls[0].endswith("train-000000.tar")
    folder = urls[0].rsplit("/", 1)[0]
    assert expand_shards(f"{folder}/*.tar") == urls
    pipe = f"pipe:cat {folder}/train-{{000000..000001}}.tar"
    assert expand_shards(pipe) == [f"pipe:cat {folder}/train-000000.tar", f"pipe:cat {folder}/train-000001.tar"]
    for pattern, message in [
        (f"{tmp_path}/none-{{0..3}}.tar", "matches no file"),
        (f"{tmp_path}/*.tar", "matches no file"),
        (f"{folder}/train-{{000000..000009}}.tar", "6 of 10 shard(s) do not exist"),
    ]:
        with pytest.raises(DataError) as err:
            expand_shards(pattern)
        assert message in str(err.value) and pattern in str(err.value) and "\n" not in str(err.value)


def test_pipe_urls_stream_through_webdataset(tagged_shards):
    folder = expand_shards(tagged_shards)[0].rsplit("/", 1)[0]
    stream = ShardStream(
        expand_shards(f"pipe:cat {folder}/train-{{000000..000003}}.tar"),
        crop=32,
        batch_size=6,
        batches_per_epoch=4,
        resampled=False,
        shuffle_buffer=0,
    )
    assert sorted(sample_id(img) for b in stream for img in b.images) == list(range(24))


def test_too_few_shards_for_exact_split_fails_up_front(tagged_shards):
    cfg = TrainDataConfig(shards=tagged_shards, resampled=False, num_workers=3)
    dm = ShardDataModule(cfg, rank=0, world_size=2)
    with pytest.raises(DataError, match="4 shard\\(s\\) cannot be split over 2 rank\\(s\\) x 3 worker"):
        dm.setup("fit")
