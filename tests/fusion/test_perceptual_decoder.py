"""The perceptual decoder: starts as the latent-only path exactly, learns through every injection."""

from __future__ import annotations

import pytest
import torch

from hdc_lightning.checkpoints import safe_load
from hdc_lightning.errors import ConfigError
from hdc_lightning.models.drv import DRVs
from hdc_lightning.models.fusion import PerceptualDecoder
from hdc_lightning.models.fusion.perceptual import anchor_low_frequencies, gaussian_lowpass
from hdc_lightning.registry import build
from tests.helpers.configs import fit_ddp, fit_overrides
from tests.helpers.models import tiny_model


def _copied(seed: int = 0, **args):
    """A tiny hybrid whose perceptual decoder was loaded from its VQ decoder, as the recipes do."""
    model, _ = tiny_model("hdc", seed, **args)
    model.perceptual.g_s.load_state_dict(model.vq.g_s.state_dict())
    model.perceptual.post_quant.load_state_dict(model.vq.post_quant.state_dict())
    return model


def _assert_gradients_reach(sfts, scales) -> None:
    """One SFT per scale, and the loss reaches both zero-initialised convs of each."""
    assert set(sfts) == {str(s) for s in scales}
    for s, sft in sfts.items():
        for conv in (sft.gamma, sft.beta):
            assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0, s


def _inputs(model, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    d_hat = torch.randint(0, model.vq.codebook_size, (2, 3, 4), generator=g)
    x_hat_lic = torch.rand(2, 3, 48, 64, generator=g)
    return d_hat, x_hat_lic


def test_zero_initialised_injection_reproduces_the_latent_only_output_exactly():
    model = _copied()
    d_hat, x_hat_lic = _inputs(model)
    with torch.no_grad():
        new = model.correct_and_decode(d_hat, x_hat_lic, DRVs())
        z = model.correction(model.vq.embed(d_hat), x_hat_lic).z
        old = model.vq.decode(z)
    assert torch.equal(new, old)


def _y_hat(model, seed: int = 2):
    """A LIC latent of a larger padded image than x̂_lic's token grid (the decoder crops it)."""
    return torch.randn(2, model.lic.M, 4, 4, generator=torch.Generator().manual_seed(seed)) * 3


def test_the_lic_latent_starts_with_no_effect_and_then_matters():
    model = _copied(perceptual_latent=True)
    d_hat, x_hat_lic = _inputs(model)
    y_hat = _y_hat(model)
    with torch.no_grad():
        z = model.correction(model.vq.embed(d_hat), x_hat_lic).z
        assert torch.equal(model.correct_and_decode(d_hat, x_hat_lic, DRVs(), y_hat=y_hat), model.vq.decode(z))
    model.correct_and_decode(d_hat, x_hat_lic, DRVs(), y_hat=y_hat).square().mean().backward()
    _assert_gradients_reach(model.perceptual.sft_latent, model.perceptual.scales)
    with torch.no_grad():
        for sft in model.perceptual.sft_latent.values():
            sft.beta.weight.add_(1e-2 * sft.beta.weight.grad.sign())
        a = model.correct_and_decode(d_hat, x_hat_lic, DRVs(), y_hat=y_hat)
        b = model.correct_and_decode(d_hat, x_hat_lic, DRVs(), y_hat=_y_hat(model, seed=3))
    assert not torch.equal(a, b)  # trained, x̃ reads the latent
    with pytest.raises(ValueError, match="y_hat"):
        model.correct_and_decode(d_hat, x_hat_lic, DRVs())
    with pytest.raises(ConfigError, match="perceptual_latent"):
        build("model", "hdc", preset="tiny", perceptual="latent", perceptual_latent=True)


def test_the_training_forward_and_the_decoder_give_the_latent_alike():
    """The decoder feeds the perceptual decoder the ŷ it decodes x̂ from, and that is the latent
    the training forward sees (up to the exact entropy side's rounding of the means)."""
    model = _copied(perceptual_latent=True)
    with torch.no_grad():
        for sft in model.perceptual.sft_latent.values():
            torch.nn.init.normal_(sft.beta.weight, std=0.1)
    model.update(force=True)
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    _, y_hat = model.base_latent(x)
    with torch.no_grad():
        c = model.compress(x, "full", 0, 1)
        decoded = model.decompress(c.lic_strings, c.schedule, c.indices, c.shape, c.seed, c.steps)
        assert torch.allclose(decoded.y_hat, y_hat, atol=1e-3)
        x_hat_lic = model.enhance(decoded.x_hat, decoded.drvs)
        ref = model.correct_and_decode(decoded.d_hat, x_hat_lic, decoded.drvs, None, decoded.y_hat)
        other = model.correct_and_decode(decoded.d_hat, x_hat_lic, decoded.drvs, None, decoded.y_hat + 1)
    assert torch.allclose(decoded.x_tilde, ref.clamp(0, 1), atol=1e-5)
    assert not torch.allclose(decoded.x_tilde, other.clamp(0, 1), atol=1e-5)


def test_the_latent_mode_is_the_papers_path():
    torch.manual_seed(0)
    model = build("model", "hdc", preset="tiny", perceptual="latent").eval()
    assert model.perceptual is None
    d_hat, x_hat_lic = _inputs(model)
    with torch.no_grad():
        z = model.correction(model.vq.embed(d_hat), x_hat_lic).z
        assert torch.equal(model.correct_and_decode(d_hat, x_hat_lic, DRVs()), model.vq.decode(z))


def test_gradients_reach_every_injection():
    model = _copied()
    d_hat, x_hat_lic = _inputs(model)
    model.correct_and_decode(d_hat, x_hat_lic, DRVs()).square().mean().backward()
    _assert_gradients_reach(model.perceptual.sft, model.perceptual.scales)
    # one Adam-sized step on the SFTs makes x̂_lic matter: the output then depends on it
    with torch.no_grad():
        for sft in model.perceptual.sft.values():
            sft.gamma.weight.add_(1e-2 * sft.gamma.weight.grad.sign())
            sft.beta.weight.add_(1e-2 * sft.beta.weight.grad.sign())
        a = model.correct_and_decode(d_hat, x_hat_lic, DRVs())
        b = model.correct_and_decode(d_hat, torch.zeros_like(x_hat_lic), DRVs())
    assert not torch.equal(a, b)


def test_the_realism_level_changes_x_tilde_not_the_start():
    model = _copied()
    assert model.learned_realism
    d_hat, x_hat_lic = _inputs(model)
    with torch.no_grad():
        at = {a: model.correct_and_decode(d_hat, x_hat_lic, DRVs(), a) for a in (0.0, 1.0, None)}
        assert torch.equal(at[0.0], at[1.0]) and torch.equal(at[1.0], at[None])  # zero-init: no effect yet
        for head in model.perceptual.realism.heads.values():  # once the realism heads have learned …
            torch.nn.init.normal_(head.weight, std=0.5)
        a0 = model.correct_and_decode(d_hat, x_hat_lic, DRVs(), 0.0)
        a1 = model.correct_and_decode(d_hat, x_hat_lic, DRVs(), torch.ones(2))
        assert not torch.equal(a0, a1)  # … a moves the output
        assert torch.equal(a1, model.correct_and_decode(d_hat, x_hat_lic, DRVs(), None))  # None means 1


def test_the_realism_mlp_is_in_the_graph_from_the_first_step():
    """DDP without find_unused_parameters needs a gradient for every parameter at every step."""
    model = _copied()
    d_hat, x_hat_lic = _inputs(model)
    model.correct_and_decode(d_hat, x_hat_lic, DRVs(), torch.tensor([0.2, 0.9])).square().mean().backward()
    for sft in model.perceptual.sft.values():
        assert sft.gamma.weight.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.perceptual.realism.parameters())
    # the heads modulate the decoder's own features, so they learn from the first step
    for head in model.perceptual.realism.heads.values():
        assert head.weight.grad.abs().sum() > 0


def test_scales_must_be_up_levels_of_the_decoder():
    model, _ = tiny_model("hdc", 0)
    with pytest.raises(ValueError, match="scales"):
        PerceptualDecoder(model.vq.decoder_args, scales=(16,))
    with pytest.raises(ConfigError, match="model.args.perceptual"):
        build("model", "hdc", preset="tiny", perceptual="pixels")


def test_the_anchor_takes_the_colours_from_x_hat_lic_and_keeps_the_texture():
    g = torch.Generator().manual_seed(0)
    ref = torch.rand(1, 3, 40, 56, generator=g)
    shift = torch.tensor([0.2, -0.1, 0.05]).view(1, 3, 1, 1)  # a colour cast of a whole region
    assert torch.allclose(anchor_low_frequencies(ref + shift, ref, 4.0), ref, atol=1e-6)
    flat = torch.full((1, 3, 16, 16), 0.3)
    assert torch.allclose(gaussian_lowpass(flat, 8.0), flat, atol=1e-7)  # radius beyond the image: replicate
    # fine texture (a one-pixel checkerboard) passes almost untouched, colours move to ref's
    checker = ((torch.arange(40)[:, None] + torch.arange(56)) % 2).float().view(1, 1, 40, 56) * 0.2 - 0.1
    out = anchor_low_frequencies(0.5 + checker.expand(1, 3, -1, -1), torch.full((1, 3, 40, 56), 0.7), 4.0)
    inner = out[..., 12:-12, 12:-12]
    assert torch.allclose(inner.mean((-2, -1)), torch.full((1, 3), 0.7), atol=1e-3)
    assert torch.allclose(inner - inner.mean((-2, -1), keepdim=True), checker[..., 12:-12, 12:-12], atol=2e-3)
    assert torch.equal(anchor_low_frequencies(ref + shift, ref, 0.0), ref + shift)  # σ = 0: off


def test_the_anchored_decoder_is_the_same_weights_with_x_hat_lics_low_frequencies():
    model = _copied()
    d_hat, x_hat_lic = _inputs(model)
    with torch.no_grad():
        raw = model.correct_and_decode(d_hat, x_hat_lic, DRVs())
        model.perceptual.anchor_sigma = 4.0
        anchored = model.correct_and_decode(d_hat, x_hat_lic, DRVs())
    assert torch.allclose(anchored, anchor_low_frequencies(raw, x_hat_lic, 4.0), atol=1e-6)
    assert (gaussian_lowpass(anchored - x_hat_lic, 4.0).abs().mean()) < 0.5 * gaussian_lowpass(
        raw - x_hat_lic, 4.0
    ).abs().mean()
    # gradients still reach every injection through the anchor
    model.correct_and_decode(d_hat, x_hat_lic, DRVs()).square().mean().backward()
    _assert_gradients_reach(model.perceptual.sft, model.perceptual.scales)
    with pytest.raises(ValueError, match="anchor_sigma"):
        PerceptualDecoder(model.vq.decoder_args, anchor_sigma=-1)


@pytest.mark.ddp
def test_fusion_phase_with_the_perceptual_decoder_under_two_process_ddp(tiny_data, tmp_path):
    """Every parameter of the perceptual decoder takes part in every backward (no unused ones),
    the SFTs of the LIC latent (``perceptual_latent``) included."""
    args = fit_overrides(
        tmp_path,
        **tiny_data,
        max_steps=2,
        **{
            "trainer.val_check_interval": 10,
            "trainer.devices": 2,
            "trainer.strategy": "ddp",
            "phase.allow_random_init": True,
            "phase.image_every": 0,
            "phase.correction_loss": "mse",
            "phase.correction_weight": 150.0,
            "model.args.perceptual_latent": True,  # every injection, the LIC latent's too
        },
    )
    fit_ddp("fusion/tiny.yaml", args)
    state = safe_load(tmp_path / "t" / "checkpoints" / "last.ckpt")["state_dict"]
    sft = [k for k in state if k.startswith("model.perceptual.sft") and k.endswith("gamma.weight")]
    assert any(".sft_latent." in k for k in sft)
    assert sft and all(state[k].abs().sum() > 0 for k in sft)  # zero at init: they learned
