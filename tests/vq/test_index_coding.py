"""Index-map coding: exact round trips (full map and subsets), real bytes, garbage rejected."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hdc_lightning.errors import BitstreamError
from hdc_lightning.models.vq import IndexPrior, quantize_pmf


def trained_prior(k: int = 256, seed: int = 0) -> IndexPrior:
    prior = IndexPrior(k)
    with torch.no_grad():
        prior.logits.copy_(torch.randn(k, generator=torch.Generator().manual_seed(seed)) * 2)
    prior.update()
    return prior


def sample(prior: IndexPrior, shape, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    n = int(np.prod(shape))
    return torch.multinomial(torch.softmax(prior.logits.detach(), 0), n, replacement=True, generator=g).view(shape)


def test_quantize_pmf_is_a_valid_16bit_cdf():
    cdf = quantize_pmf(np.array([0.7, 0.3, 0.0, 1e-9]))
    assert cdf[0] == 0 and cdf[-1] == 1 << 16 and len(cdf) == 6
    assert np.all(np.diff(cdf) >= 1)  # every symbol (and the overflow bin) codable


def test_full_map_round_trip_and_real_bits_near_the_estimate():
    prior = trained_prior()
    coder = prior.coder()
    idx = sample(prior, (32, 48))
    data = coder.encode_indices(idx)
    assert torch.equal(coder.decode_indices(data, (32, 48)), idx)
    real, ideal = 8 * len(data), float(prior.bits(idx))
    assert ideal < real < ideal * 1.02 + 8 * 12  # 4 B checksum + 8 B rANS flush
    assert real < 32 * 48 * 8  # well below log2(256) = 8 bits per index: the prior is used


@settings(max_examples=25, deadline=None)
@given(h=st.integers(1, 12), w=st.integers(1, 12), p=st.floats(0.0, 1.0), seed=st.integers(0, 10**6))
def test_masked_subsets_round_trip_exactly(h, w, p, seed):
    prior = trained_prior(64)
    coder = prior.coder()
    idx = sample(prior, (h, w), seed)
    mask = torch.rand(h, w, generator=torch.Generator().manual_seed(seed)) < p
    out = coder.decode_indices(coder.encode_indices(idx, mask), (h, w), mask)
    assert torch.equal(out[mask], idx[mask])
    assert (out[~mask] == -1).all()


def test_stored_table_survives_a_state_dict_round_trip():
    prior = trained_prior()
    idx = sample(prior, (8, 8))
    data = prior.coder().encode_indices(idx)
    other = IndexPrior(256)
    other.load_state_dict(prior.state_dict())
    assert torch.equal(other.coder().decode_indices(data, (8, 8)), idx)


def test_garbage_truncation_and_foreign_prior_raise_bitstream_error():
    prior = trained_prior()
    coder = prior.coder()
    idx = sample(prior, (16, 16))
    data = coder.encode_indices(idx)
    rng = np.random.default_rng(0)
    bad = [b"", data[:3], data[:-4], data + b"\0", bytes(rng.integers(0, 256, len(data), dtype=np.uint8))]
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x10
    bad.append(bytes(flipped))
    for blob in bad:
        with pytest.raises(BitstreamError):
            coder.decode_indices(blob, (16, 16))
    with pytest.raises(BitstreamError, match="another model"):
        trained_prior(seed=1).coder().decode_indices(data, (16, 16))


def test_unchecked_decoder_survives_random_garbage():
    """Without the checksum, garbage decodes to *something* or raises; it never crashes or hangs."""
    coder = trained_prior(64).coder(checksum=False)
    rng = np.random.default_rng(1)
    for _ in range(300):
        blob = bytes(rng.integers(0, 256, int(rng.integers(0, 300)), dtype=np.uint8))
        try:
            out = coder.decode_indices(blob, (6, 7))
            assert out.min() >= 0 and out.max() < 64
        except BitstreamError:
            pass


def test_empty_mask_gives_empty_stream():
    coder = trained_prior(64).coder()
    idx = torch.zeros(4, 4, dtype=torch.long)
    mask = torch.zeros(4, 4, dtype=torch.bool)
    assert coder.encode_indices(idx, mask) == b""
    assert (coder.decode_indices(b"", (4, 4), mask) == -1).all()
    with pytest.raises(BitstreamError):
        coder.decode_indices(b"\0" * 12, (4, 4), mask)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 9])
def test_short_streams_of_the_least_likely_code_round_trip(n):
    """compressai's encoder overruns its buffer below a few symbols; short maps are padded."""
    prior = trained_prior(256)
    rare = int(np.argmin(np.diff(prior.cdf.numpy())[:-1]))
    idx = torch.full((1, n), rare, dtype=torch.long)
    coder = prior.coder()
    assert torch.equal(coder.decode_indices(coder.encode_indices(idx), (1, n)), idx)


def test_update_keeps_the_stored_table_while_the_logits_are_unchanged():
    """The stored integer table is authoritative: update() after loading never rebuilds it."""
    prior = trained_prior()
    stored = torch.from_numpy(quantize_pmf(np.arange(1.0, 257.0)))  # any valid table
    with torch.no_grad():
        prior.cdf.copy_(stored)
    assert not prior.update() and torch.equal(prior.cdf, stored)
    with torch.no_grad():
        prior.logits[0] += 1.0
    assert prior.update() and not torch.equal(prior.cdf, stored)
    assert not prior.update() and prior.update(force=True)
