"""The composed "hdc" model: nested part specs, ablation switches, training forward, paper preset."""

from __future__ import annotations

import pytest
import torch

from hdc_lightning.errors import HDCError
from hdc_lightning.models.drv import DRVs
from hdc_lightning.models.hybrid import HDCOutput
from hdc_lightning.registry import build
from tests.helpers.models import tiny_model


def test_parts_follow_the_vq_and_the_extractor():
    model, _ = tiny_model(
        "hdc", 0, parts={"vq": {"args": {"codebook_size": 48, "code_dim": 24}}, "extractor": {"args": {"dim": 20}}}
    )
    assert model.predictor.codebook_size == 48 and model.predictor.head.out_features == 48
    assert model.correction.code_dim == 24
    assert model.sampler.dim == 20
    assert model.enhancer.blocks[0].film.proj.in_features == 20


@pytest.mark.parametrize(
    "args, message",
    [
        ({"drv": "half"}, "model.args.drv"),
        ({"parts": {"decoder": "tiny"}}, "unknown parts decoder"),
        ({"parts": {"vq": {"presets": "tiny"}}}, "unknown keys presets"),
        ({"parts": {"vq": 3}}, "model.args.parts.vq"),
        ({"parts": {"vq": {"args": {"nope": 1}}}}, "model.args.parts.vq.args.nope"),
        ({"parts": {"vq": {"args": {"ch_mult": [1, 1, 2, 4]}}}}, "model.args.parts.vq: the hybrid needs an f16 VQ"),
    ],
)
def test_bad_specs_name_the_key(args, message):
    with pytest.raises(HDCError, match=message.replace(".", r"\.")):
        build("model", "hdc", preset="tiny", **args)


# (drv switch, correction) → which modules exist and which DRVs steer them
ABLATIONS = [("both", True), ("none", True), ("predictor", True), ("enhancer", True), ("both", False)]


@pytest.mark.parametrize("drv, correction", ABLATIONS)
def test_ablation_variants_train_one_step(drv, correction):
    model, _ = tiny_model("hdc", 0, drv=drv, correction=correction)
    model.lic.requires_grad_(False).eval()
    model.vq.requires_grad_(False).eval()
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    out = model(x)
    assert isinstance(out, HDCOutput)
    assert out.x_tilde.shape == x.shape and out.x_hat_lic.shape == x.shape
    assert out.logits.shape == (2, model.vq.codebook_size, 4, 4)
    assert torch.equal(out.d_hat[out.sent], out.indices[out.sent])  # sent indices are what T was given
    assert (out.drvs.v_L is not None) == (drv in ("both", "enhancer"))
    assert (out.drvs.v_P is not None) == (drv in ("both", "predictor"))
    assert (model.extractor is None) == (drv == "none") and (model.correction is None) == (not correction)
    films = [n for n, _ in model.named_parameters() if "film" in n]
    assert bool(films) == (drv != "none")
    loss = (out.x_hat_lic - x).abs().mean() + out.logits.logsumexp(1).mean() + (out.x_tilde - x).abs().mean()
    loss.backward()
    trained = [model.enhancer, model.predictor] + [m for m in (model.correction,) if m is not None]
    for module in trained:
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())
    if model.extractor is not None:  # in the graph (zero-initialised FiLM: its gradient starts at zero)
        assert all(p.grad is not None for p in model.extractor.parameters())
    assert all(p.grad is None for p in model.lic.parameters())


def test_drv_sources_and_sampling_is_seeded():
    model, _ = tiny_model("hdc", 0)
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    sent = torch.zeros(1, 4, 4, dtype=torch.bool)
    with torch.no_grad():
        a = model(x, sent, drv_source="sampled", seed=5).drvs
        b = model(x, sent, drv_source="sampled", seed=5).drvs
        c = model(x, sent, drv_source="sampled", seed=6).drvs
        u = model(x, sent, drv_source="unrolled").drvs
    assert isinstance(a, DRVs) and torch.equal(a.v_L, b.v_L) and torch.equal(a.v_P, b.v_P)
    assert not torch.equal(a.v_P, c.v_P)
    assert u.v_L.shape == a.v_L.shape
    with pytest.raises(ValueError):
        model(x, sent, drv_source="oracle")
    with pytest.raises(ValueError):
        model(torch.rand(1, 3, 60, 64))


def test_paper_preset_one_forward_128():
    torch.manual_seed(0)
    model = build("model", "hdc", preset="paper").eval()
    assert model.predictor.codebook_size == model.vq.codebook_size == 1024
    assert model.correction.code_dim == 256 and model.extractor.dim == 256
    with torch.no_grad():
        out = model(torch.rand(1, 3, 128, 128))
    assert out.x_tilde.shape == (1, 3, 128, 128) and out.logits.shape == (1, 1024, 8, 8)
    assert torch.isfinite(out.x_tilde).all()
