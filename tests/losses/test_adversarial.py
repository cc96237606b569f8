"""The conditional, realism-weighted GAN of the fusion phase: which player each term reaches."""

from __future__ import annotations

import torch

from hdc_lightning.losses.adversarial import ConditionalAdversarialLoss


def _grads(loss, *tensors):
    return torch.autograd.grad(loss, tensors, allow_unused=True, retain_graph=True)


def test_each_term_reaches_one_player_only():
    torch.manual_seed(0)
    gan = ConditionalAdversarialLoss(channels=8, n_layers=2)
    x, cond = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    fake = torch.rand(2, 3, 32, 32, requires_grad=True)
    out = gan(x, fake, cond)
    params = list(gan.parameters())
    g_fake, *g_params = _grads(out.g_loss, fake, *params)
    assert g_fake is not None and g_fake.abs().sum() > 0 and all(g is None for g in g_params)
    d_fake, *d_params = _grads(out.d_loss, fake, *params)
    assert d_fake is None and all(g is not None for g in d_params)


def test_realism_weights_scale_each_examples_generator_term():
    torch.manual_seed(0)
    gan = ConditionalAdversarialLoss(channels=8, n_layers=2)
    x, cond = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    fake = torch.rand(2, 3, 32, 32, requires_grad=True)
    (grad,) = _grads(gan(x, fake, cond, torch.tensor([0.0, 1.0])).g_loss, fake)
    assert grad[0].abs().sum() == 0 and grad[1].abs().sum() > 0  # a = 0: no adversarial pull at all
    full = gan(x, fake, cond).g_loss
    half = gan(x, fake, cond, torch.tensor([0.5, 0.5])).g_loss
    torch.testing.assert_close(half, 0.5 * full)


def test_the_discriminator_sees_the_condition():
    torch.manual_seed(0)
    gan = ConditionalAdversarialLoss(channels=8, n_layers=2)
    x, fake = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    a = gan(x, fake, torch.zeros(1, 3, 32, 32)).logits_fake
    b = gan(x, fake, torch.ones(1, 3, 32, 32)).logits_fake
    assert not torch.equal(a, b)
