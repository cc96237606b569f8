"""The VQ model: presets, typed outputs, straight-through gradients, no collapse, the codec methods."""

import pytest
import torch

from hdc_lightning import registry
from hdc_lightning.models.vq import CosineQuantizer, VQOutput
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


@pytest.mark.parametrize("lookup_dim,update", [(8, "grad"), (None, "grad"), (8, "ema")])
def test_no_codebook_collapse_on_a_toy_set(lookup_dim, update):
    """Dead-code restarts keep > 50 % of a 64-code book in use (without them: 2-6 % on this set)."""
    torch.manual_seed(0)
    model = toy_vq(restart_after=3, lookup_dim=lookup_dim, codebook_update=update)
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


def test_ema_codebook_follows_the_mean_direction_of_its_assignments():
    """Spherical k-means: after a few forwards on fixed data each used code is the normalised
    mean of the lookup vectors assigned to it; the codebook gets no gradient."""
    torch.manual_seed(0)
    q = CosineQuantizer(16, 8, codebook_update="ema", ema_decay=0.5, restart_after=1000).train()
    z = torch.randn(4, 8, 6, 6)
    before = q.codebook.weight.clone()
    for _ in range(30):
        out = q(z)
    assert not torch.equal(q.codebook.weight, before)
    assert not q.codebook.weight.requires_grad and not out.codebook_loss.requires_grad
    vectors, idx = q.lookup(z)
    vectors, idx = vectors.flatten(0, 2), idx.flatten()
    for k in idx.unique():
        mean = torch.nn.functional.normalize(vectors[idx == k].mean(0), dim=0)
        assert float(mean @ q.codes()[k]) > 0.999, int(k)
    # The averages are state: saved, and a strict reload gives the same codes.
    state = q.state_dict()
    assert {"ema_count", "ema_sum"} <= set(state)
    fresh = CosineQuantizer(16, 8, codebook_update="ema")
    fresh.load_state_dict(state, strict=True)
    assert torch.equal(fresh.codes(), q.codes())
    # The plain codebook keeps its old state (shipped checkpoints load unchanged), and the
    # averages are training statistics: either kind loads the other's state strictly.
    plain = CosineQuantizer(16, 8)
    assert set(plain.state_dict()) == {"codebook.weight"}
    plain.load_state_dict(state, strict=True)
    assert torch.equal(plain.codes(), q.codes())
    restarted = CosineQuantizer(16, 8, codebook_update="ema")
    restarted.load_state_dict(plain.state_dict(), strict=True)
    assert torch.equal(restarted.codes(), q.codes()) and float(restarted.ema_count.sum()) == 0.0


def test_ema_restart_resets_the_averages_of_the_restarted_code():
    q = CosineQuantizer(16, 8, codebook_update="ema", restart_after=2).train()
    z = torch.randn(2, 8, 4, 4)
    q(z)
    q.idle[5] = 10  # code 5 is dead: restarted at the start of the next forward
    q.ema_count[5], q.ema_sum[5] = 3.0, 1.0
    out = q(z)
    # Reset to zero at the restart, so what is left is this forward's own assignments.
    chosen = out.indices.flatten() == 5
    assert float(q.ema_count[5]) == pytest.approx(0.01 * int(chosen.sum()))
    vectors = q.lookup(z)[0].flatten(0, 2)
    assert torch.allclose(q.ema_sum[5], 0.01 * vectors[chosen].sum(0), atol=1e-6)


def test_bad_codebook_update_raises():
    with pytest.raises(ValueError, match="codebook_update"):
        CosineQuantizer(16, 8, codebook_update="kmeans")


def test_unquantised_latent_is_what_a_codebook_holding_the_lookup_vectors_gives():
    model = toy_vq(lookup_dim=4).eval()
    q = model.quantizer
    z_e = torch.randn(1, 16, 2, 2)
    with torch.no_grad():
        vectors = q.lookup(z_e)[0].flatten(0, 2)  # the 4 normalised lookup vectors
        q.codebook.weight[:4] = vectors  # now each token's nearest code is its own vector
        assert torch.allclose(q(z_e).z_q, q.unquantised(z_e), atol=1e-5)
        x = torch.rand(1, 3, 32, 32)
        assert model.decode(q.unquantised(model.g_a(x * 2 - 1))).shape == x.shape
