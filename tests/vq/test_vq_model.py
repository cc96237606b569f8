"""The VQ model: presets, typed outputs, straight-through gradients, no collapse, the codec methods."""

import pytest
import torch

from hdc_lightning import registry
from hdc_lightning.models.vq import VQOutput
from tests.helpers.images import synthetic_image
from tests.helpers.models import toy_vq


def test_tiny_preset_forward_shapes_and_attributes():
    model = registry.build("model", "vq", preset="tiny")
    x = torch.rand(2, 3, 128, 128)
    out = model(x)
    assert isinstance(out, VQOutput)
    assert out.x_hat.shape == x.shape
    assert out.indices.shape == (2, 8, 8) and out.indices.dtype == torch.long
    assert out.z_q.shape == out.z_e.shape == (2, model.code_dim, 8, 8)
    assert model.downsample == 16 and model.codebook_size == 128 and model.quantizer.codebook.weight.shape[1] == 8
    assert 1.0 <= float(out.perplexity) <= model.codebook_size


def test_paper_preset_matches_the_design_and_runs_one_forward():
    model = registry.build("model", "vq", preset="paper")
    assert (model.downsample, model.codebook_size, model.code_dim) == (16, 1024, 256)
    model.eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, 64, 64))
    assert out.x_hat.shape == (1, 3, 64, 64) and out.indices.shape == (1, 4, 4)
    assert torch.isfinite(out.x_hat).all()


def test_straight_through_gradients_reach_encoder_and_codebook():
    model = toy_vq()
    x = torch.rand(2, 3, 64, 64)
    out = model(x)
    # Reconstruction alone must train the encoder (through the straight-through estimator).
    (out.x_hat - x).abs().mean().backward(retain_graph=True)
    assert model.g_a.conv_in.weight.grad is not None and model.g_a.conv_in.weight.grad.abs().sum() > 0
    assert model.quantizer.codebook.weight.grad is None  # codes learn only from their own loss
    out.codebook_loss.backward(retain_graph=True)
    assert model.quantizer.codebook.weight.grad.abs().sum() > 0
    out.prior_loss.backward()
    assert model.prior.logits.grad.abs().sum() > 0


def test_factorised_lookup_works_and_gets_gradients():
    model = toy_vq(lookup_dim=4)
    out = model(torch.rand(1, 3, 32, 32))
    (out.x_hat.mean() + out.commit_loss + out.codebook_loss).backward()
    assert model.quantizer.proj_in.weight.grad.abs().sum() > 0
    assert model.quantizer.codebook.weight.shape == (64, 4)


def test_codec_methods_agree_with_forward():
    model = toy_vq().eval()
    x = torch.rand(2, 3, 32, 48)
    with torch.no_grad():
        out = model(x)
        idx = model.encode_indices(x)
        assert torch.equal(idx, out.indices)
        assert torch.allclose(model.embed(idx), out.z_q, atol=1e-6)
        assert torch.allclose(model.decode_indices(idx), out.x_hat, atol=1e-5)


def test_bad_inputs_raise_clear_errors():
    model = toy_vq()
    with pytest.raises(ValueError, match="multiple of 16"):
        model(torch.rand(1, 3, 40, 32))
    with pytest.raises(ValueError, match="out of range"):
        model.embed(torch.full((1, 2, 2), 64, dtype=torch.long))


@pytest.mark.parametrize("lookup_dim", [8, None])
def test_no_codebook_collapse_on_a_toy_set(lookup_dim):
    """Dead-code restarts keep > 50 % of a 64-code book in use (without them: 2-6 % on this set)."""
    torch.manual_seed(0)
    model = toy_vq(restart_after=3, lookup_dim=lookup_dim)
    data = synthetic_image(64, 64, seed=1, style="fields", n=64)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    for _ in range(20):
        x = data[torch.randperm(64)[:16]]
        out = model(x)
        loss = (out.x_hat - x).abs().mean() + out.codebook_loss + out.commit_loss + out.prior_loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        used = model.encode_indices(data).unique().numel()
    assert used / 64 > 0.5, f"only {used}/64 codes used"


def test_dead_code_is_restarted_from_recent_encoder_outputs():
    model = toy_vq(restart_after=2)
    q = model.quantizer
    z = torch.randn(2, 16, 4, 4)
    q(z)
    q.idle[5] = 10  # pretend code 5 has been idle for long
    before = q.codebook.weight[5].clone()
    q(z)
    assert not torch.equal(q.codebook.weight[5], before)
    pool = torch.cat(q._pool)
    sim = (pool @ torch.nn.functional.normalize(q.codebook.weight[5], dim=0)).max()
    assert sim > 0.99  # the new code sits on a recent encoder output (plus small noise)
