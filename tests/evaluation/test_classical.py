"""Classical baselines: the quality search lands on the target rate with real Pillow bytes."""

import pytest

from hdc_lightning.evaluation import classical
from hdc_lightning.evaluation.metrics import MetricSuite
from tests.helpers.images import synthetic_image

IMAGE = synthetic_image(192, 256, seed=1, style="photo")


@pytest.mark.parametrize("codec", list(classical.CODECS))
def test_rate_matching_hits_a_reachable_target(codec):
    if codec not in classical.supported():  # shown as a skip, never a silently missing case
        pytest.skip(f"this Pillow cannot encode {codec} (features.check({classical.CODECS[codec].feature!r}))")
    matcher = classical.RateMatcher()
    lo = matcher.match(codec, IMAGE, 1e-6, key="img").bpp  # lowest quality's rate
    hi = matcher.match(codec, IMAGE, 1e6, key="img").bpp  # highest quality's rate
    for target in (lo + 0.3 * (hi - lo), lo + 0.6 * (hi - lo)):
        enc = matcher.match(codec, IMAGE, target, key="img")
        assert enc.bpp == pytest.approx(len(enc.data) * 8 / (192 * 256))  # real bytes
        assert enc.rate_error < 0.15, (codec, target, enc)
        rec = classical.decode(enc.data)
        assert rec.shape == IMAGE.shape


def test_unreachable_targets_return_the_closest_end_and_say_how_far():
    m = classical.RateMatcher()
    enc = m.match("jpeg", IMAGE, 1e-4, key="x")
    assert enc.quality == classical.CODECS["jpeg"].q_min and enc.rate_error > 1


def test_sizes_are_cached_per_image_key(monkeypatch):
    m = classical.RateMatcher()
    m.match("jpeg", IMAGE, 1.0, key="a")
    calls = []
    real = classical.encode
    monkeypatch.setattr(classical, "encode", lambda *a: calls.append(a[2]) or real(*a))
    m.match("jpeg", IMAGE, 1.0, key="a")
    assert len(calls) <= 1  # only the chosen quality is re-encoded to return its bytes


def test_evaluate_at_rates_returns_per_image_metrics():
    suite = MetricSuite(lpips=False)
    imgs = [("a", IMAGE), ("b", synthetic_image(176, 176, seed=2, style="photo"))]
    recs = classical.evaluate_at_rates("jpeg", imgs, [0.8, 1.0], suite)
    assert [r["name"] for r in recs] == ["a", "b"]
    for r in recs:
        assert {"bpp", "target_bpp", "quality", "psnr-rgb", "ms-ssim-rgb"} <= set(r)
        assert 15 < r["psnr-rgb"] < 60 and 0 < r["ms-ssim-rgb"] <= 1


def test_unknown_or_unsupported_codec(monkeypatch):
    with pytest.raises(classical.CodecUnsupported, match="unknown classical codec 'bpg'"):
        classical.get("bpg")
    monkeypatch.setattr(classical.features, "check", lambda name: name != "avif")
    with pytest.raises(classical.CodecUnsupported, match="without AVIF support"):
        classical.get("avif")
    assert "avif" not in classical.supported()
