"""kid-vgg16 orders what a realism axis must: the originals best, stronger distortions worse."""

from __future__ import annotations

import torch

from hdc_lightning.codec.imageio import read_image
from hdc_lightning.evaluation.fid import KID_VGG16, PatchFID, vgg16_extractor
from hdc_lightning.evaluation.realism_axis import blur, distortion_ladder, jpeg, ordered


def test_ordered_reads_each_ladder_against_the_originals():
    assert ordered({"original": [0.0], "a": [0.1, 0.2], "b": [0.2, 0.1], "c": [-0.1, 0.3]}) == {
        "a": True,
        "b": False,
        "c": False,
    }


def test_kid_vgg16_ranks_blur_and_jpeg_on_real_photos(kodak_dir):
    images = [read_image(kodak_dir / f"kodim{i:02d}.png") for i in (1, 23)]
    ladders = {"blur": (blur, (1.0, 4.0)), "jpeg": (jpeg, (50, 5))}
    result = distortion_ladder(images, vgg16_extractor(), ladders, kid_name=KID_VGG16)
    assert ordered(result) == {"blur": True, "jpeg": True}, result


class _MeanColour(torch.nn.Module):
    """A tiny feature extractor: each patch's mean colour and its spread (5-d)."""

    def forward(self, x):
        x = x.float() / 255
        return torch.cat([x.mean((2, 3)), x.std((2, 3))[:, :2]], dim=1)


def test_kid_is_near_zero_on_equal_sets_and_clearly_above_on_shifted_ones():
    g = torch.Generator().manual_seed(0)
    images = [torch.rand(3, 512, 512, generator=g) * torch.rand(3, 1, 1, generator=g) for _ in range(6)]
    same, shifted = (PatchFID(_MeanColour(), kid_name=KID_VGG16, with_fid=False) for _ in range(2))
    for x in images:
        same.update(x, x.clone())
        shifted.update(x, (x + 0.3).clamp(0, 1))
    equal, apart = same.compute()[KID_VGG16], shifted.compute()[KID_VGG16]
    assert abs(equal) < 0.01 and apart > 10 * abs(equal), (equal, apart)  # unbiased: ≈ 0, either sign
