"""VQGAN loss: each parameter set gets only its own gradient; guarded adaptive weight."""

import pytest
import torch
from torch import nn

from hdc_lightning.losses.vqgan import adaptive_weight
from hdc_lightning.phases.vq import VQConfig
from hdc_lightning.registry import build_from


class TinyGenerator(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        return torch.sigmoid(self.conv(x))


def grads(module):
    return [p.grad for p in module.parameters()]


def setup(disc_start=0, **kw):
    torch.manual_seed(0)
    cfg = VQConfig(perceptual_weight=0.0, disc_start=disc_start, disc_channels=8, disc_layers=2, **kw)
    loss = build_from("loss", "vqgan", cfg, where="phase")
    return TinyGenerator(), loss


def test_disc_loss_reaches_only_the_discriminator_and_g_adv_only_the_generator():
    gen, loss = setup()
    x = torch.rand(2, 3, 32, 32)
    out = loss(x, gen(x), step=0, last_layer=gen.conv.weight)
    out.d_loss.backward(retain_graph=True)
    assert all(g is None for g in grads(gen))
    # (the last bias may get exactly 0: real and fake hinge terms cancel on it)
    assert all(g is not None for g in grads(loss.discriminator))
    assert all(p.grad.abs().sum() > 0 for n, p in loss.discriminator.named_parameters() if n.endswith("weight"))
    loss.discriminator.zero_grad(set_to_none=True)
    out.g_adv.backward()
    assert all(g is None for g in grads(loss.discriminator))
    assert gen.conv.weight.grad.abs().sum() > 0


def test_before_disc_start_discriminator_gets_zero_but_present_gradients():
    gen, loss = setup(disc_start=100)
    x = torch.rand(2, 3, 32, 32)
    out = loss(x, gen(x), step=5, last_layer=gen.conv.weight)
    assert float(out.adv_weight) == 0.0
    out.loss.backward()
    for g in grads(loss.discriminator):
        assert g is not None and torch.count_nonzero(g) == 0  # in the graph (DDP), but no update


def test_adaptive_weight_is_finite_under_bf16_and_zero_when_adv_grad_vanishes():
    gen, loss = setup()
    x = torch.rand(2, 3, 32, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = loss(x, gen(x), step=0, last_layer=gen.conv.weight)
    assert torch.isfinite(out.adv_weight) and 0 < float(out.adv_weight) <= 1e4 * 0.8
    assert torch.isfinite(out.loss)
    w = gen.conv.weight
    rec = (w * 2).sum()
    assert float(adaptive_weight(rec, (w * 0).sum(), w)) == 0.0  # no adversarial gradient: no weight
    assert float(adaptive_weight(rec, (w * float("nan")).sum(), w)) == 0.0


def test_chroma_term_prices_a_colour_cast_that_leaves_luminance_alone():
    """A grey-for-red swap of equal luma: the chroma term sees it, is 0 on equal colour, off by default."""
    from hdc_lightning.colour import block_chroma

    gen, loss = setup(disc_start=100, chroma_weight=2.0)
    red = torch.zeros(1, 3, 16, 16)
    red[:, 0] = 0.8
    luma = 0.299 * 0.8
    grey = torch.full((1, 3, 16, 16), luma)  # same Y, no chroma
    assert float(loss(red, red, step=0, last_layer=None).chroma) == 0.0
    out = loss(red, grey, step=0, last_layer=None)
    expected = (block_chroma(red, 4) - block_chroma(grey, 4)).abs().mean()
    assert float(out.chroma) == pytest.approx(float(expected)) and float(out.chroma) > 0.1
    assert float(out.loss) == pytest.approx(float(out.rec + 2.0 * out.chroma))
    # The gradient reaches the generator through the term.
    x = torch.rand(1, 3, 16, 16)
    loss(x, gen(x), step=0, last_layer=None).chroma.backward()
    assert gen.conv.weight.grad.abs().sum() > 0
    _, plain = setup(disc_start=100)
    assert float(plain(red, grey, step=0, last_layer=None).chroma) == 0.0
