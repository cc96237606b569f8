"""The perceptual decoder: starts as the latent-only path exactly, learns through every injection."""

from __future__ import annotations

import pytest
import torch

from hdc_lightning.checkpoints import safe_load
from hdc_lightning.errors import ConfigError
from hdc_lightning.models.drv import DRVs
from hdc_lightning.models.fusion import PerceptualDecoder
from hdc_lightning.registry import build
from tests.helpers.configs import fit_ddp, fit_overrides
from tests.helpers.models import tiny_model


def _copied(seed: int = 0):
    """A tiny hybrid whose perceptual decoder was loaded from its VQ decoder, as the recipes do."""
    model, _ = tiny_model("hdc", seed)
    model.perceptual.g_s.load_state_dict(model.vq.g_s.state_dict())
    model.perceptual.post_quant.load_state_dict(model.vq.post_quant.state_dict())
    return model


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
    assert set(model.perceptual.sft) == {str(s) for s in model.perceptual.scales}
    for s, sft in model.perceptual.sft.items():
        for conv in (sft.gamma, sft.beta):
            assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0, s
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


@pytest.mark.ddp
def test_fusion_phase_with_the_perceptual_decoder_under_two_process_ddp(tiny_data, tmp_path):
    """Every parameter of the perceptual decoder takes part in every backward (no unused ones)."""
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
        },
    )
    fit_ddp("fusion/tiny.yaml", args)
    state = safe_load(tmp_path / "t" / "checkpoints" / "last.ckpt")["state_dict"]
    sft = [k for k in state if k.startswith("model.perceptual.sft.") and k.endswith("gamma.weight")]
    assert sft and all(state[k].abs().sum() > 0 for k in sft)  # zero at init: they learned
