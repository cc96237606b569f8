"""kid-vgg16 orders what a realism axis must: the originals best, stronger distortions worse."""

from __future__ import annotations

from hdc_lightning.codec.imageio import read_image
from hdc_lightning.evaluation.fid import KID_VGG16, vgg16_extractor
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
