"""The fixed-point entropy side: integer arithmetic, carried exactly in float64.

The reference here computes the same convolutions in int64 (unfold + integer matmul), where
no rounding can happen; the float64 path must match it bit for bit, at any thread count.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from compressai.layers import CheckerboardMaskedConv2d
from torch import nn

from hdc_lightning.models.lic.exact import (
    ACT_BITS,
    ACT_LIMIT,
    SUM_BITS,
    FixedPointConv,
    exact_latent_codec,
    integer_weights,
    to_grid,
)


def _int_conv2d(x_int: torch.Tensor, w_int: torch.Tensor, b_int: torch.Tensor, stride: int, padding: int):
    """Conv2d in int64: no rounding anywhere."""
    n, _, h, w = x_int.shape
    k = w_int.shape[-1]
    cols = F.unfold(x_int.double(), k, padding=padding, stride=stride).to(torch.int64)  # a copy: exact
    out = w_int.flatten(1).to(torch.int64) @ cols + b_int.to(torch.int64)[:, None]
    ho, wo = (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1
    return out.view(n, -1, ho, wo)


def _int_conv_transpose2d(x_int, w_int, b_int, stride: int, padding: int, output_padding: int):
    """Transposed conv in int64, as a stride-1 conv over the zero-upsampled input."""
    n, c, h, w = x_int.shape
    k = w_int.shape[-1]
    up = torch.zeros(n, c, (h - 1) * stride + 1, (w - 1) * stride + 1, dtype=torch.int64)
    up[..., ::stride, ::stride] = x_int
    lo, hi = k - 1 - padding, k - 1 - padding + output_padding
    up = F.pad(up, (lo, hi, lo, hi))
    w_conv = w_int.flip(-1, -2).transpose(0, 1)
    return _int_conv2d(up, w_conv, b_int, 1, 0)


def _units(t: torch.Tensor, bits: int) -> torch.Tensor:
    scaled = t.double() * 2.0**bits
    assert torch.equal(scaled, scaled.round()), "value off its grid"
    return scaled.to(torch.int64)


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("threads", [1, 2])
def test_fixed_point_conv_equals_integer_arithmetic(transposed, threads):
    torch.manual_seed(0)
    if transposed:
        conv = nn.ConvTranspose2d(24, 16, 5, stride=2, padding=2, output_padding=1)
    else:
        conv = nn.Conv2d(24, 16, 5, stride=2, padding=2)
    with torch.no_grad():
        conv.weight.mul_(40)  # values well off any grid, some sums large
        conv.bias.uniform_(-3, 3)
    fp = FixedPointConv(conv)
    x = torch.randn(2, 24, 9, 11, dtype=torch.float64) * 300
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        got = fp(x)
    finally:
        torch.set_num_threads(saved)
    x_int = _units(to_grid(x), ACT_BITS)
    w_int = _units(fp.weight, fp.shift)
    b_int = _units(fp.bias, ACT_BITS + fp.shift)
    if transposed:
        acc = _int_conv_transpose2d(x_int, w_int, b_int, 2, 2, 1)
    else:
        acc = _int_conv2d(x_int, w_int, b_int, 2, 2)
    # rescale to the activation grid: round half up, then clamp (what to_grid does)
    shift = fp.shift
    rounded = torch.div(acc + (1 << (shift - 1)), 1 << shift, rounding_mode="floor")
    limit = int(ACT_LIMIT * 2**ACT_BITS)
    want = rounded.clamp(-limit, limit).double() / 2.0**ACT_BITS
    assert torch.equal(got, want)
    assert (got.abs() > 0).float().mean() > 0.5  # not a vacuous comparison


def test_weight_shift_bounds_every_sum_and_keeps_precision():
    w = torch.randn(32, 64, 5, 5) * 0.05
    w_int, shift = integer_weights(w)
    sums = w_int.abs().to(torch.int64).flatten(1).sum(1)
    finer = torch.round(w.double() * 2.0 ** (shift + 1)).abs().to(torch.int64).flatten(1).sum(1)
    assert int(sums.max()) <= 2**SUM_BITS < int(finer.max())  # the largest shift that fits
    assert float((w_int / 2.0**shift - w.double()).abs().max()) <= 2.0 ** -(shift + 1)
    with pytest.raises(ValueError, match="too large"):
        integer_weights(torch.full((1, 1, 1, 1), 1e30))


def test_masked_conv_keeps_its_mask():
    conv = CheckerboardMaskedConv2d(4, 8, kernel_size=5, padding=2)
    fp = FixedPointConv(conv)
    assert torch.all(fp.weight[..., conv.mask[0, 0] == 0] == 0)


def test_to_grid_clamps_and_rounds():
    x = torch.tensor([1e9, -1e9, 0.3, 2.0**-ACT_BITS / 2, -(2.0**-ACT_BITS) / 2], dtype=torch.float64)
    g = to_grid(x)
    assert g[0] == ACT_LIMIT and g[1] == -ACT_LIMIT
    assert torch.equal(g * 2.0**ACT_BITS, (g * 2.0**ACT_BITS).round())
    assert g[3] == 2.0**-ACT_BITS and g[4] == 0.0  # half rounds up


def test_exact_latent_codec_replaces_every_conv_and_leaves_the_model(tiny_lic):
    lc = exact_latent_codec(tiny_lic.latent_codec)
    kinds = {type(m) for m in lc.modules()}
    assert nn.Conv2d not in kinds and nn.ConvTranspose2d not in kinds and CheckerboardMaskedConv2d not in kinds
    assert FixedPointConv in kinds
    assert next(tiny_lic.latent_codec.parameters()).dtype == torch.float32  # the model is untouched


@pytest.fixture
def tiny_lic():
    from hdc_lightning.models.lic import LIC

    torch.manual_seed(0)
    m = LIC(**LIC_TINY).eval()
    m.update(force=True)
    return m


LIC_TINY = dict(N=16, M=32, Nh=16, groups=(8, 24), blocks=1, attention=False, ctx_hidden=(24, 16))


def test_decoder_latent_equals_encoder_latent_at_any_thread_count(tiny_lic):
    torch.manual_seed(1)
    x = torch.rand(1, 3, 64, 96)
    c = tiny_lic.compress(x)
    saved = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            d = tiny_lic.decompress(c.strings, c.shape)
            assert torch.equal(d.y_hat, c.y_hat)
    finally:
        torch.set_num_threads(saved)
