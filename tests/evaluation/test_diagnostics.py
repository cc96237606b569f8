"""Border-band and chroma diagnostics (docs/vq.md): exact on hand-made images."""

import pytest
import torch

from hdc_lightning.evaluation.diagnostics import border_errors, border_ratio, chroma_error, probe_r2


def test_border_errors_split_frame_and_interior():
    ref = torch.zeros(3, 64, 80)
    rec = ref.clone()
    rec[:, :8, :] = 10 / 255  # a striped band along the top edge only
    edge, inside = border_errors(ref, rec, band=8)
    frame_pixels = 64 * 80 - 48 * 64
    assert edge == pytest.approx(10 * 8 * 80 / frame_pixels, rel=1e-5) and inside == 0
    assert border_ratio(ref, ref + 0.1, band=8) == pytest.approx(1.0, rel=1e-5)
    with pytest.raises(ValueError, match="no interior"):
        border_errors(ref, rec, band=32)


def test_chroma_error_sees_a_colour_cast_not_a_brightness_change():
    ref = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 0.5 + 0.25
    grey_shift = ref + 0.1  # same colour, brighter: Cb and Cr unchanged
    red_cast = ref.clone()
    red_cast[:, 0] += 0.1
    assert chroma_error(ref, grey_shift) == pytest.approx(0.0, abs=1e-4)
    assert chroma_error(ref, red_cast) == pytest.approx((0.168736 + 0.5) / 2 * 0.1 * 255, rel=1e-4)


def test_probe_r2_tells_a_linear_signal_from_noise():
    g = torch.Generator().manual_seed(1)
    features = torch.randn(400, 6, generator=g)
    carried = features @ torch.randn(6, 1, generator=g) + 0.5  # exactly linear
    dropped = torch.randn(400, 1, generator=g)  # independent of the features
    r2 = probe_r2(features, torch.cat([carried, dropped], 1))
    assert r2[0] == pytest.approx(1.0, abs=1e-6)
    assert r2[1] < 0.1
    with pytest.raises(ValueError, match="at least 8"):
        probe_r2(features[:4], carried[:4])
