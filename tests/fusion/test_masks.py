"""Mask schedules: grids, complexity-aware choice, serialisation round trip, garbage rejection."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hdc_lightning.errors import BitstreamError, ConfigError
from hdc_lightning.models.masks import MaskPolicy, MaskSchedule, complexity_scores, grid_mask, uniform_schedule
from hdc_lightning.registry import build


@pytest.mark.parametrize("level,density", [("full", 1.0), ("1/4", 1 / 4), ("1/9", 1 / 9), ("none", 0.0)])
def test_uniform_grids_have_their_density(level, density):
    m = grid_mask(36, 48, level)
    assert m.dtype == torch.bool and m.shape == (36, 48)
    assert m.float().mean().item() == pytest.approx(density)
    assert torch.equal(uniform_schedule(level).mask(36, 48), m)


def test_one_in_four_and_one_in_nine_are_regular_subgrids():
    m4, m9 = grid_mask(6, 6, "1/4"), grid_mask(6, 6, "1/9")
    assert m4.nonzero().tolist() == [[r, c] for r in (0, 2, 4) for c in (0, 2, 4)]
    assert m9.nonzero().tolist() == [[r, c] for r in (1, 4) for c in (1, 4)]  # centres of 3×3 cells


def _busy_bottom(h, w):
    g = torch.Generator().manual_seed(0)
    img = torch.full((1, 3, h, w), 0.5)
    img[..., h // 2 :, :] = torch.rand(1, 3, h - h // 2, w, generator=g)
    return img


def test_auto_schedule_gives_busy_regions_denser_levels():
    policy = MaskPolicy(region=4, fractions=(0.5, 0.25, 0.25))
    s = policy.choose(_busy_bottom(128, 128))
    assert s.region == 4 and len(s.codes) == 4  # 8x8 tokens → 2x2 regions
    assert s.levels() in (["1/9", "1/9", "1/4", "full"], ["1/9", "1/9", "full", "1/4"])
    mask = s.mask(8, 8)
    assert mask[4:].sum() > 2 * mask[:4].sum()
    assert policy.choose(_busy_bottom(128, 128)) == s  # deterministic
    assert policy.choose(_busy_bottom(128, 128), mode="1/9") == uniform_schedule("1/9")


def test_auto_schedule_thresholds_and_partial_regions():
    policy = MaskPolicy(region=3, thresholds=(1e-4, 1e-2))
    img = _busy_bottom(h=320, w=192)  # 20x12 tokens → 7x4 regions, the last row partial
    s = policy.choose(img)
    assert len(s.codes) == 28
    scores = complexity_scores(img, 3)
    assert scores.shape == (7, 4)
    assert all(c == 1 for c, sc in zip(s.codes, scores.flatten()) if sc < 1e-4)
    assert s.mask(20, 12).shape == (20, 12)
    assert MaskSchedule.from_bytes(s.to_bytes(), (20, 12)) == s


@settings(max_examples=60, deadline=None)
@given(
    h=st.integers(1, 40),
    w=st.integers(1, 40),
    region=st.integers(1, 9),
    data=st.data(),
)
def test_schedule_round_trip(h, w, region, data):
    n = -(-h // region) * -(-w // region)
    codes = tuple(data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)))
    s = MaskSchedule(region, codes)
    blob = s.to_bytes()
    assert len(blob) == 2 + -(-n // 4)
    back = MaskSchedule.from_bytes(blob, (h, w))
    assert back == s and torch.equal(back.mask(h, w), s.mask(h, w))
    for level in range(4):
        u = uniform_schedule(level)
        assert MaskSchedule.from_bytes(u.to_bytes(), (h, w)) == u


@settings(max_examples=200, deadline=None)
@given(blob=st.binary(max_size=12))
def test_garbage_gives_bitstream_error_or_a_valid_schedule(blob):
    try:
        s = MaskSchedule.from_bytes(blob, (8, 12))
    except BitstreamError as e:
        assert "\n" not in str(e) and str(e).startswith("mask schedule")
    else:  # whatever parses must describe the grid and survive a round trip
        assert s.mask(8, 12).shape == (8, 12)
        assert s.to_bytes() == blob


@pytest.mark.parametrize(
    "blob",
    [b"", b"\x55", b"\x13\x00", b"\x20", b"\x20\x00", b"\x20\x04\xff", b"\x20\x04\xff\xff\xff"]
    + [b"\x20\x03\x55\x57", b"\xff" * 9, b"\x20\x04\xff\xff", b"\x1c"],
)
def test_malformed_schedules_are_rejected(blob):
    with pytest.raises(BitstreamError):
        MaskSchedule.from_bytes(blob, (8, 12))  # region 4 → 2x3 = 6 regions → 2 bytes of codes


def test_training_masks_follow_the_policy():
    policy = build("model", "masks", "tiny")
    g = torch.Generator().manual_seed(0)
    m = policy.training_masks(64, 8, 12, generator=g)
    assert m.shape == (64, 8, 12) and m.dtype == torch.bool
    dens = m.float().mean().item()
    expected = 0.5 / 9 + 0.3 / 4 + 0.2  # fractions of (1/9, 1/4, full)
    assert abs(dens - expected) < 0.08
    assert torch.equal(m, policy.training_masks(64, 8, 12, generator=torch.Generator().manual_seed(0)))
    more = policy.training_masks(64, 8, 12, generator=torch.Generator().manual_seed(0), reveal_max=0.5)
    assert (more | m).equal(more) and more.float().mean() > dens + 0.05


def test_bad_policy_config():
    with pytest.raises(ConfigError):
        MaskPolicy(mode="1/5")
    with pytest.raises(ConfigError):
        MaskPolicy(fractions=(0.5, 0.5, 0.5))
    with pytest.raises(ConfigError):
        MaskPolicy(levels=("1/16",))
    with pytest.raises(ConfigError):
        MaskPolicy(thresholds=(0.1, 0.01))
