"""Evaluation folder loader: whole images, replicate padding, sizes, names, bad files."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from PIL import Image

from hdc_lightning.data.batches import EvalBatch
from hdc_lightning.data.folder import FolderDataModule, iter_folder_images
from hdc_lightning.errors import DataError
from tests.helpers.images import save_image


@pytest.fixture()
def folder(tmp_path):
    save_image(tmp_path / "b.png", 33, 47, seed=1)
    save_image(tmp_path / "a.jpg", 64, 32, seed=2, fmt="JPEG")
    save_image(tmp_path / "sub" / "c.png", 10, 12, seed=3)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG but then nothing")
    return tmp_path


def test_eval_batches_are_padded_and_crop_back_exactly(folder, caplog):
    dm = FolderDataModule(folder, pad_multiple=16)
    with caplog.at_level(logging.WARNING):
        batches = list(dm.val_dataloader())
    assert [b.names for b in batches] == [["a.jpg"], ["b.png"], ["sub/c.png"]]  # sorted, recursive
    assert "broken.png" in caplog.text  # reported by name, then skipped
    b = batches[1]
    assert isinstance(b, EvalBatch) and b.images.shape == (1, 3, 48, 48) and b.images.dtype == torch.float32
    assert b.sizes.tolist() == [[33, 47]] and b.sizes.dtype == torch.long
    h, w = b.sizes[0].tolist()
    original = torch.from_numpy(np.array(Image.open(folder / "b.png"))).permute(2, 0, 1).float() / 255
    assert torch.equal(b.images[0, :, :h, :w], original)
    # replicate padding: the padded rows/columns repeat the last real ones
    assert torch.equal(b.images[0, :, h:, :w], original[:, -1:, :].expand(3, 48 - h, w))
    assert torch.equal(b.images[0, :, :h, w:], original[:, :, -1:].expand(3, h, 48 - w))
    assert batches[2].images.shape == (1, 3, 16, 16) and batches[0].images.shape == (1, 3, 64, 32)


def test_batches_keep_their_type_through_device_transfer_and_workers(folder):
    from lightning.fabric.utilities.apply_func import move_data_to_device

    dm = FolderDataModule(folder, pad_multiple=8, max_images=2, num_workers=2)
    batches = list(dm.val_dataloader())
    assert sorted(b.names[0] for b in batches) == ["a.jpg", "b.png"]  # max_images counts files
    moved = move_data_to_device(batches[0], torch.device("cpu"))
    assert isinstance(moved, EvalBatch) and isinstance(moved.names, list) and moved.names == batches[0].names


def test_iter_folder_images_reports_and_goes_on(folder):
    bad = []
    items = list(iter_folder_images(folder, on_error=lambda name, why: bad.append(name)))
    assert [n for n, _ in items] == ["a.jpg", "b.png", "sub/c.png"] and bad == ["broken.png"]
    assert items[1][1].shape == (3, 33, 47) and 0 <= items[1][1].min() and items[1][1].max() <= 1
    quiet = lambda *a: None  # noqa: E731
    assert [n for n, _ in iter_folder_images(folder, recursive=False, on_error=quiet)] == ["a.jpg", "b.png"]
    # max_images counts files: the third is broken.png, skipped
    assert [n for n, _ in iter_folder_images(folder, max_images=3, on_error=quiet)] == ["a.jpg", "b.png"]


def test_bad_folders_fail_early_with_one_line(tmp_path):
    for path, message in [(tmp_path / "nope", "does not exist"), (tmp_path, "no image files")]:
        with pytest.raises(DataError, match=message) as err:
            FolderDataModule(path)
        assert "\n" not in str(err.value)
