"""DRV extractor, denoising networks and the deterministic sampler (tiny presets; paper: one forward)."""

from __future__ import annotations

import pytest
import torch

from hdc_lightning.losses.drv import DRVMatchLoss
from hdc_lightning.models.drv import DRVs, make_betas, seeded_noise
from hdc_lightning.phases.drv import DRVConfig
from hdc_lightning.registry import build, build_from


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(0)
    return torch.rand(2, 3, 64, 64, generator=g), torch.rand(2, 3, 64, 64, generator=g)


def test_extractor_shapes_and_gradients(images):
    x_hat, x = images
    ext = build("model", "drv_extractor", "tiny")
    v = ext(x_hat, x)
    assert isinstance(v, DRVs) and v.v_L.shape == v.v_P.shape == (2, 32)
    assert not torch.allclose(v.v_L, v.v_P)  # two different heads
    (v.v_L.square().mean() + v.v_P.square().mean()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in ext.parameters())


def test_extractor_single_drv_and_bad_input(images):
    x_hat, x = images
    ext = build("model", "drv_extractor", "tiny", names=("P",))
    v = ext(x_hat, x)
    assert v.v_L is None and v.v_P.shape == (2, 32)
    with pytest.raises(ValueError):
        ext(x_hat, x[..., :32])
    with pytest.raises(ValueError):
        build("model", "drv_extractor", "tiny", names=("Q",))


def test_betas_sqrt_linear():
    b = make_betas(4, 0.1, 0.99)
    assert torch.allclose(b[[0, -1]], torch.tensor([0.1, 0.99], dtype=torch.float64))
    assert torch.allclose(b.sqrt().diff(), b.sqrt().diff()[:1].expand(3))  # linear in sqrt(beta)
    with pytest.raises(ValueError):
        make_betas(4, 0.5, 0.1)


def test_sampler_is_deterministic_and_ignores_global_rng(images):
    x_hat, _ = images
    s = build("model", "drv_sampler", "tiny").eval()
    torch.manual_seed(1)
    state = torch.get_rng_state()
    a = s.sample(x_hat, seed=7)
    assert torch.equal(torch.get_rng_state(), state)  # global RNG neither used nor advanced
    torch.manual_seed(12345)
    b = s.sample(x_hat, seed=7)
    c = s.sample(x_hat, seed=8)
    assert torch.equal(a.v_L, b.v_L) and torch.equal(a.v_P, b.v_P)
    assert not torch.equal(a.v_L, c.v_L) and not torch.equal(a.v_P, c.v_P)
    assert a.v_L.shape == (2, 32)
    assert torch.equal(seeded_noise((3,), 5), seeded_noise((3,), 5))


def test_sampler_starts_from_the_seeded_noise_and_uses_the_posterior_mean(images):
    """One step by hand: v_{t-1} = coef0·DN(v_t) + coef_t·v_t, starting at seeded noise."""
    x_hat, _ = images
    s = build("model", "drv_sampler", "tiny", names=("L",)).eval()
    net = s.nets["L"]
    with torch.no_grad():
        v = seeded_noise((1, 2, 32), 3)[0]
        cond = net.condition(x_hat)
        for t in (3, 2, 1, 0):
            v0 = net(v, torch.full((2,), t), cond)
            v = v0 if t == 0 else s.coef0[t] * v0 + s.coef_t[t] * v
        out = s.sample(x_hat, seed=3)
    assert out.v_P is None
    assert torch.allclose(out.v_L, v, atol=1e-6)


def test_unroll_trains_sampled_drvs_towards_ground_truth(images):
    x_hat, x = (t[..., :32, :32] for t in images)
    torch.manual_seed(0)
    target = build("model", "drv_extractor", "tiny")(x_hat, x)
    target = DRVs(target.v_L.detach(), target.v_P.detach())
    s = build("model", "drv_sampler", "tiny")
    loss_fn = build_from("loss", "drv_match", DRVConfig(), where="phase", prefix="match_")
    opt = torch.optim.Adam(s.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(40):
        out = s.unroll(x_hat, target, generator=gen)
        loss = sum(loss_fn(out.get(n), target.get(n)).loss for n in ("L", "P"))
        opt.zero_grad()
        loss.backward()
        losses.append(loss.item())
        opt.step()
    assert all(p.grad is not None for p in s.parameters())
    assert losses[-1] < 0.5 * losses[0]
    # what was learnt carries over to decode-time sampling from a seed
    with torch.no_grad():
        sampled = s.sample(x_hat, seed=0)
        err = (sampled.v_L - target.v_L).abs().mean()
    assert err < (target.v_L - target.v_L.mean()).abs().mean()


def test_drv_match_loss():
    loss = DRVMatchLoss(l1_weight=1.0, kl_weight=1.0, temperature=0.15)
    v = torch.randn(4, 16)
    same = loss(v, v)
    assert same.loss.abs() < 1e-6 and same.kl.abs() < 1e-6
    out = loss(v + 0.5 * torch.randn(4, 16), v)
    assert out.l1 > 0 and out.kl > 0 and torch.isclose(out.loss, out.l1 + out.kl)
    with pytest.raises(ValueError):
        loss(v, v[:, :8])


@pytest.mark.parametrize("name", ["drv_extractor", "drv_sampler"])
def test_paper_presets_run_one_forward(name):
    x = torch.rand(1, 3, 128, 128)
    m = build("model", name, "paper").eval()
    with torch.no_grad():
        out = m(x, x) if name == "drv_extractor" else m(x, seed=0)
    assert out.v_L.shape == out.v_P.shape == (1, 256)
