"""The LIC model: presets, the forward contract, exact latent round trip, real vs estimated bits."""

from __future__ import annotations

import pytest
import torch

from hdc_lightning.losses.rate_distortion import RateDistortionLoss
from hdc_lightning.models.lic import LIC, LICOutput, estimated_bits, resize_entropy_buffers
from hdc_lightning.registry import build
from tests.helpers.images import synthetic_image

LMBDA = 0.01


def _tiny(seed: int = 0) -> LIC:
    torch.manual_seed(seed)
    return build("model", "lic", preset="tiny")


RD_LOSS = RateDistortionLoss(lmbda=LMBDA, distortion="mse")


def _rd_loss(model: LIC, x: torch.Tensor) -> torch.Tensor:
    out = model(x)
    return RD_LOSS(x, out.x_hat, out.likelihoods).loss


@pytest.fixture(scope="module")
def trained_tiny():
    """The tiny preset after 30 steps on one fixed batch, with the losses it went through."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread whatever the session set (tests/conftest.py sets 1 too)
    model, x = _tiny(), synthetic_image(64, 64, style="fields", n=4)
    net = [p for n, p in model.named_parameters() if not n.endswith(".quantiles")]
    aux = [p for n, p in model.named_parameters() if n.endswith(".quantiles")]
    opt = torch.optim.Adam([{"params": net, "lr": 1e-3}, {"params": aux, "lr": 1e-2}])
    losses = []
    for _ in range(30):
        loss = _rd_loss(model, x)
        (loss + model.aux_loss()).backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    torch.set_num_threads(threads)
    return model.eval(), x, losses


def test_tiny_preset_budget_and_contract():
    model = _tiny()
    assert sum(p.numel() for p in model.parameters()) <= 1_000_000
    x = torch.rand(2, 3, 70, 100)  # padded to 128x128 inside, cropped back
    out = model(x)
    assert isinstance(out, LICOutput)
    assert out.x_hat.shape == x.shape
    assert set(out.likelihoods) == {"y", "z"}
    assert out.y_hat.shape == (2, model.M, 128 // 16, 128 // 16)


def test_paper_preset_builds_and_runs_one_forward():
    torch.manual_seed(0)
    model = build("model", "lic", preset="paper").eval()
    assert (model.N, model.M, len(model.groups)) == (192, 320, 5)
    with torch.no_grad():
        out = model(torch.rand(1, 3, 128, 128))
    assert out.x_hat.shape == (1, 3, 128, 128) and out.y_hat.shape == (1, 320, 8, 8)
    assert torch.isfinite(out.x_hat).all()


def test_tiny_lowers_its_loss_on_a_fixed_batch(trained_tiny):
    _, _, losses = trained_tiny
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.7 * first, losses


@pytest.mark.parametrize("size", [(64, 64), (70, 130)])
def test_decoder_reproduces_the_encoders_latents_exactly(trained_tiny, size):
    model = trained_tiny[0]
    model.update(force=True)
    x = torch.rand(1, 3, *size)
    c = model.compress(x)
    assert len(c.strings) == len(model.stream_names())
    d = model.decompress(c.strings, c.shape)
    assert torch.equal(d.y_hat, c.y_hat)
    assert d.x_hat.shape == x.shape
    assert d.y_hat.dtype == torch.float32 and d.y_hat.device.type == "cpu"


def test_real_bits_match_the_estimate(trained_tiny):
    model, x, _ = trained_tiny
    model.update(force=True)
    ratios = []
    for i in range(x.shape[0]):
        xi = torch.nn.functional.interpolate(x[i : i + 1], size=(256, 256), mode="bilinear")
        with torch.no_grad():
            est = float(estimated_bits(model(xi).likelihoods))
        real = 8 * sum(len(s[0]) for s in model.compress(xi).strings)
        ratios.append(real / est)
    # about 1.005 at 256²: one 8-byte rANS flush, scales rounded up to the table's entries
    assert all(0.99 < r < 1.03 for r in ratios), ratios


def test_cdf_buffers_load_across_update():
    updated = _tiny(0)
    updated.update(force=True)
    fresh = _tiny(1)
    resize_entropy_buffers(fresh, updated.state_dict())
    fresh.load_state_dict(updated.state_dict())  # after update() → into a fresh model
    assert torch.equal(
        fresh.latent_codec.hyper.entropy_bottleneck._quantized_cdf,
        updated.latent_codec.hyper.entropy_bottleneck._quantized_cdf,
    )
    before = _tiny(2).state_dict()
    resize_entropy_buffers(fresh, before)
    fresh.load_state_dict(before)  # before update() → into an updated model
    assert fresh.latent_codec.hyper.entropy_bottleneck._quantized_cdf.numel() == 0
