"""LIC enhancer and VQ correction: identity at init, gradients, DRV ablations, paper presets."""

from __future__ import annotations

import pytest
import torch

from hdc_lightning.models.fusion import CorrectionOutput, EnhancerOutput
from hdc_lightning.registry import build


def _two_steps_all_grads(module, run):
    """After one SGD step (which moves the zero-initialised layers) every parameter gets a gradient."""
    opt = torch.optim.SGD(module.parameters(), lr=0.1)
    for _ in range(2):
        opt.zero_grad()
        run().backward()
        opt.step()
    missing = [n for n, p in module.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing, f"no gradient reached: {missing}"


@pytest.fixture(scope="module")
def x():
    return torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))


def test_enhancer_starts_as_identity_and_trains(x):
    torch.manual_seed(0)
    enh = build("model", "enhancer", "tiny")
    v = torch.randn(2, 32)
    out = enh(x, v)
    assert isinstance(out, EnhancerOutput) and out.x_hat_lic.shape == x.shape
    assert torch.equal(out.x_hat_lic, x) and not out.residual.any()
    target = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    _two_steps_all_grads(enh, lambda: (enh(x, v).x_hat_lic - target).abs().mean())
    # FiLM is live after training: the DRV now changes the output, v=None still runs
    assert not torch.allclose(enh(x, v).x_hat_lic, enh(x, None).x_hat_lic)


def test_enhancer_without_drv_ablation(x):
    enh = build("model", "enhancer", "tiny", drv_dim=0)
    assert enh(x).x_hat_lic.shape == x.shape
    assert not any("film" in n for n, _ in enh.named_parameters())
    with pytest.raises(ValueError):
        enh(x, torch.randn(2, 32))


def test_correction_starts_as_identity_and_trains(x):
    torch.manual_seed(0)
    cor = build("model", "correction", "tiny")
    z_q = torch.randn(2, 32, 4, 4)
    v = torch.randn(2, 32)
    out = cor(z_q, x, v)
    assert isinstance(out, CorrectionOutput) and out.z.shape == z_q.shape
    assert torch.equal(out.z, z_q) and not out.delta.any()
    target = z_q + torch.randn_like(z_q)
    _two_steps_all_grads(cor, lambda: (cor(z_q, x, v).z - target).square().mean())
    assert cor(z_q, x, None).z.shape == z_q.shape
    with pytest.raises(ValueError):
        cor(torch.randn(2, 32, 3, 4), x, v)  # grid does not match the image


def test_correction_without_drv_ablation(x):
    cor = build("model", "correction", "tiny", drv_dim=0, code_dim=8)
    assert cor(torch.randn(2, 8, 4, 4), x).z.shape == (2, 8, 4, 4)


def test_paper_presets_run_one_forward():
    x = torch.rand(1, 3, 128, 128)
    v = torch.randn(1, 256)
    with torch.no_grad():
        enh = build("model", "enhancer", "paper").eval()
        x_lic = enh(x, v).x_hat_lic
        assert torch.equal(x_lic, x)
        cor = build("model", "correction", "paper").eval()
        z = cor(torch.randn(1, 256, 8, 8), x_lic, v).z
    assert z.shape == (1, 256, 8, 8)
