"""Per-image metrics and patch FID/KID: sanity values and graceful unavailability."""

import math

import pytest
import torch
from torch import nn

from hdc_lightning.evaluation import metrics
from hdc_lightning.evaluation.fid import INCEPTION_FILE, PatchFID, inception_weights, patches
from hdc_lightning.evaluation.metrics import MetricSuite, MetricUnavailable
from tests.helpers.images import synthetic_image

REF = synthetic_image(176, 192, seed=3, style="photo")


def test_identical_images_give_capped_psnr_and_unit_ms_ssim():
    out = MetricSuite(lpips=False)(REF, REF.clone())
    assert out["psnr-rgb"] == metrics.PSNR_CAP_DB
    assert out["ms-ssim-rgb"] == pytest.approx(1.0, abs=1e-6)


def test_psnr_is_on_8_bit_images():
    # An error of exactly one 8-bit level everywhere: MSE = 1/255², PSNR = 20·log10(255) ≈ 48.13 dB.
    base = (REF * 254).round() / 255
    shifted = base + 1 / 255
    assert metrics.psnr_rgb(base, shifted) == pytest.approx(20 * math.log10(255), abs=1e-3)
    # Sub-level noise vanishes after rounding to 8 bits.
    assert metrics.psnr_rgb(base, base + 0.3 / 255) == metrics.PSNR_CAP_DB


def test_ms_ssim_skips_images_too_small_for_five_scales():
    small = synthetic_image(96, 96, style="photo")
    out = MetricSuite(lpips=False)(small, small * 0.9)
    assert "ms-ssim-rgb" not in out and out["psnr-rgb"] < 40


def test_lpips_and_dists_unavailable_without_weights(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty hub and no `hdc weights` output
    monkeypatch.delenv("HDC_LPIPS_BACKBONE", raising=False)
    monkeypatch.delenv("HDC_WEIGHTS_DIR", raising=False)
    monkeypatch.setattr(metrics, "_announced", set())
    suite = MetricSuite(lpips=True, dists=True)
    out = suite(REF, REF * 0.95)
    out2 = suite(REF, REF * 0.9)
    assert "lpips" not in out and "dists" not in out2 and "psnr-rgb" in out
    assert "alexnet-trunk.pt" in suite.unavailable["lpips"] and str(tmp_path) in suite.unavailable["lpips"]
    assert "vgg16-trunk.pt" in suite.unavailable["dists"] and "hdc weights" in suite.unavailable["dists"]
    err = capsys.readouterr().err
    assert err.count("LPIPS unavailable") == 1 and err.count("DISTS unavailable") == 1  # said once


def test_lpips_code_path_with_random_backbone():
    suite = MetricSuite(lpips=True, lpips_random_backbone=True)
    same, diff = suite(REF, REF)["lpips"], suite(REF, synthetic_image(176, 192, seed=9, style="photo"))["lpips"]
    assert same == pytest.approx(0.0, abs=1e-6) and diff > same


def test_patches_include_the_half_shifted_grid():
    img = torch.rand(3, 512, 768)
    assert patches(img).shape == (6 + 2, 3, 256, 256)  # 2×3 grid + 1×2 shifted by 128 px
    assert patches(img, shifted=False).shape[0] == 6
    assert torch.equal(patches(img)[6], img[:, 128:384, 128:384])
    assert patches(torch.rand(3, 100, 300)).shape[0] == 0


class _TinyFeatures(nn.Module):
    """A fixed random conv feature extractor standing in for Inception's weights (absent offline)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Conv2d(3, 8, 5, stride=4), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten())

    def forward(self, x):
        return self.net(x.float() / 255)


def test_patch_fid_and_kid_through_torchmetrics():
    imgs = [synthetic_image(512, 512, seed=s, style="photo") for s in range(3)]
    same, other = PatchFID(_TinyFeatures()), PatchFID(_TinyFeatures())
    cache = {}
    for i, im in enumerate(imgs):
        same.update(im, im.clone(), key=str(i), cache=cache)
        other.update(im, (im * 0.5 + 0.25), key=str(i), cache=cache)
    assert same.n_patches == 3 * (4 + 1) and len(cache) == 3
    a, b = same.compute(), other.compute()
    assert a["fid"] == pytest.approx(0.0, abs=1e-3) and b["fid"] > 1e-3 and b["kid"] > a["kid"]


def test_fid_unavailable_says_which_file_where(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("HDC_FID_WEIGHTS", raising=False)
    with pytest.raises(MetricUnavailable) as e:
        inception_weights()
    msg = str(e.value)
    assert ("torch-fidelity" in msg) or (INCEPTION_FILE in msg and str(tmp_path) in msg)
