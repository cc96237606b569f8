"""Phases 3 (drv) and 4 (fusion): steps = batches, what trains when, init checks, validation bytes."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from hdc_lightning.checkpoints import safe_load
from hdc_lightning.errors import ConfigError
from hdc_lightning.phases.base import flatten_sources
from hdc_lightning.train import build_phase, fit
from tests.helpers.configs import fit_ddp, fit_overrides, tiny_config


def hybrid_cfg(phase: str, data: dict, run_root, **extra) -> dict:
    """``experiments/<phase>/tiny.yaml`` on the tiny data; random LIC/VQ weights allowed, images logged."""
    return tiny_config(phase, run_root, **data, **{"phase.image_every": 1, "phase.allow_random_init": True, **extra})


def _state(ckpt, prefix: str) -> dict:
    return {k: v for k, v in safe_load(ckpt)["state_dict"].items() if k.startswith(prefix)}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def drv_run(tiny_data, tmp_path_factory):
    """2 batches of step 1 (checkpointed), then 2 of step 2: the stage boundary is inside the run."""
    root = tmp_path_factory.mktemp("drvrun")
    common = {"phase.denoise_start": 2, "run.ckpt_every_n_steps": 1}
    first = fit(
        hybrid_cfg("drv", tiny_data, root, **common, **{"trainer.max_steps": 2, "trainer.val_check_interval": 10})
    )
    step1 = safe_load(first.last_ckpt)["state_dict"]
    second = fit(
        hybrid_cfg(
            "drv",
            tiny_data,
            root,
            **common,
            **{"trainer.max_steps": 4, "trainer.val_check_interval": 4, "run.resume": True},
        )
    )
    return root, step1, second


def test_drv_phase_step1_then_step2(drv_run):
    _, step1, result = drv_run
    assert result.global_step == 4  # one optimizer step per batch
    after = safe_load(result.last_ckpt)["state_dict"]
    extractor = [k for k in after if k.startswith("model.extractor.")]
    sampler = [k for k in after if k.startswith("model.sampler.")]
    fusion = [k for k in after if k.startswith(("model.enhancer.", "model.predictor."))]
    assert all(torch.equal(step1[k], after[k]) for k in extractor)  # frozen teacher in step 2
    assert not all(torch.equal(step1[k], after[k]) for k in sampler)  # denoisers trained in step 2
    assert all(torch.equal(step1[k], after[k]) for k in fusion)  # joint_fusion=false: they wait for phase 4
    m = result.metrics
    for key in (
        "train/drv_l1",
        "train/drv_kl",
        "val/drv_l1",
        "val/index_acc",
        "val/psnr",
        "val/psnr_fidelity",
        "val/psnr_x_hat",
    ):
        assert key in m, key
    # val/bpp: the whole file the codec wrote; the streams are its payload, the rest its header.
    assert m["val/bpp"] > m["val/bpp_lic"] + m["val/bpp_schedule"] + m["val/bpp_indices"]


def test_drv_step1_keeps_the_sampler_and_trains_the_rest(tiny_data, tmp_path):
    cfg = hybrid_cfg("drv", tiny_data, tmp_path, **{"trainer.max_steps": 2, "trainer.val_check_interval": 10})
    L.seed_everything(cfg["run"]["seed"], workers=True, verbose=False)  # as fit() does before building
    before = {k: v.clone() for k, v in build_phase(cfg).state_dict().items()}
    result = fit(cfg)
    after = safe_load(result.last_ckpt)["state_dict"]
    # compressai's MaskedConv2d masks its weight in place at the first forward: not training.
    skip = ("_cdf", "_offset", "_cdf_length", "context_prediction.weight")
    changed = {
        k.split(".")[1] for k in after if k in before and not k.endswith(skip) and not torch.equal(before[k], after[k])
    }
    assert not changed & {"sampler", "lic", "vq"}
    assert {"train/index_ce", "train/index_acc", "train/enhancer_loss", "train/correction_l1"} <= set(result.metrics)


def test_fusion_from_the_drv_stage(drv_run, tiny_data, tmp_path):
    _, _, drv = drv_run
    cfg = hybrid_cfg(
        "fusion",
        tiny_data,
        tmp_path,
        **{
            "trainer.max_steps": 2,
            "trainer.val_check_interval": 2,
            "phase.allow_random_init": False,
            "run.init_from.model.ckpt": str(drv.last_ckpt),
            "run.init_from.model.prefix": "model.",
        },
    )
    result = fit(cfg)
    assert result.global_step == 2
    before, after = safe_load(drv.last_ckpt)["state_dict"], safe_load(result.last_ckpt)["state_dict"]
    for part in ("extractor", "sampler", "lic.g_a", "lic.g_s", "vq"):
        keys = [k for k in after if k.startswith(f"model.{part}.") and "_cdf" not in k and "_offset" not in k]
        assert keys and all(torch.equal(before[k], after[k]) for k in keys), part
    assert not all(torch.equal(before[k], after[k]) for k in after if k.startswith("model.predictor."))
    assert "val/bpp_indices" in result.metrics and "val/drv_l1" in result.metrics


@pytest.mark.parametrize("perceptual", ["inject", "latent"])
def test_fusion_end_to_end_trains_the_decode_side_only(perceptual, tiny_data, tmp_path):
    cfg = hybrid_cfg(
        "fusion",
        tiny_data,
        tmp_path,
        **{
            "trainer.max_steps": 1,
            "trainer.val_check_interval": 10,
            "phase.end_to_end": True,
            "phase.random_seeds": True,
            "model.args.perceptual": perceptual,
        },
    )
    phase = build_phase(cfg)
    trainable = {n.split(".")[1] + "." + n.split(".")[2] for n, p in phase.named_parameters() if p.requires_grad}
    assert not any(t.startswith(("vq.g_a", "vq.quantizer", "lic.")) for t in trainable)
    # x̃'s decoder learns: the VQ decoder in the latent-only path, else the perceptual decoder
    # (the VQ stream's own decoder then stays as the VQ stage trained it)
    vq_decoder = {"vq.g_s", "vq.post_quant"}
    if perceptual == "latent":
        assert vq_decoder <= trainable
    else:
        assert not vq_decoder & trainable and {"perceptual.g_s", "perceptual.sft"} <= trainable
    assert any(t.startswith("sampler.") for t in trainable) and not any(t.startswith("extractor.") for t in trainable)
    assert fit(cfg).global_step == 1


@pytest.mark.parametrize("drv", ["none", "predictor"])
def test_drv_phase_ablations_run(drv, tiny_data, tmp_path):
    cfg = hybrid_cfg(
        "drv",
        tiny_data,
        tmp_path,
        **{
            "trainer.max_steps": 2,
            "trainer.val_check_interval": 10,
            "phase.denoise_start": 1,
            "model.args.drv": drv,
            "model.args.correction": drv != "none",
        },
    )
    assert fit(cfg).global_step == 2


def test_lpips_term_with_a_random_trunk(tiny_data, tmp_path):
    cfg = hybrid_cfg(
        "fusion",
        tiny_data,
        tmp_path,
        **{
            "trainer.max_steps": 1,
            "trainer.val_check_interval": 1,
            "trainer.limit_val_batches": 1,
            "phase.perceptual_weight": 0.5,
            "phase.lpips_random_backbone": True,
        },
    )
    m = fit(cfg).metrics
    assert "train/lpips" in m and {"val/lpips_random_trunk", "val/lpips_random_trunk_fidelity"} <= set(m)
    assert "val/lpips" not in m  # a random trunk is never reported as LPIPS


def test_fusion_with_the_conditional_gan(tiny_data, tmp_path):
    """D learns from step 1 in its own optimizer group, the generator term starts at
    adversarial_start, and D stays out of the exported model."""
    cfg = hybrid_cfg(
        "fusion",
        tiny_data,
        tmp_path,
        **{
            "trainer.max_steps": 2,
            "trainer.val_check_interval": 10,
            "phase.adversarial_weight": 0.1,
            "phase.adversarial_start": 1,
        },
    )
    phase = build_phase(cfg)
    before = {k: v.clone() for k, v in phase.loss.adversarial.state_dict().items()}
    result = fit(cfg)
    state = safe_load(result.last_ckpt)["state_dict"]
    prefix = "loss.adversarial."
    d_keys = [k for k in state if k.startswith(prefix + "discriminator.")]
    assert d_keys and not all(torch.equal(before[k[len(prefix) :]], state[k]) for k in d_keys)
    assert {"train/g_adv", "train/d_loss", "train/d_real", "train/d_fake"} <= set(result.metrics)
    assert not any("discriminator" in k for k in phase.model.state_dict())  # never shipped


def test_refuses_random_lic_and_vq(tiny_data, tmp_path):
    with pytest.raises(
        ConfigError, match=r"run\.init_from: phase 'drv' needs trained weights for model\.lic, model\.vq"
    ):
        build_phase(hybrid_cfg("drv", tiny_data, tmp_path, **{"phase.allow_random_init": False}))
    with pytest.raises(ConfigError, match="model.sampler"):
        build_phase(
            hybrid_cfg(
                "fusion",
                tiny_data,
                tmp_path,
                **{
                    "phase.allow_random_init": False,
                    "run.init_from.model.lic.ckpt": "a",
                    "run.init_from.model.vq.ckpt": "b",
                },
            )
        )
    with pytest.raises(ConfigError, match="multiple of 16"):
        build_phase(hybrid_cfg("drv", tiny_data, tmp_path, **{"data.train.crop": 72}))


def test_flatten_sources():
    nested = {"model": {"lic": {"ckpt": "a", "prefix": "model."}, "vq": {"ckpt": "b"}}, "x": {"ckpt": "c"}}
    assert flatten_sources(nested) == {
        "model.lic": {"ckpt": "a", "prefix": "model."},
        "model.vq": {"ckpt": "b"},
        "x": {"ckpt": "c"},
    }
    # a whole-module source beside sources of its parts is ambiguous: refused, not half applied
    with pytest.raises(ConfigError, match=r"run\.init_from\.model: one source for the whole module .*\(lic\)"):
        flatten_sources({"model": {"ckpt": "a", "prefix": "model.", "lic": {"ckpt": "b"}}})


@pytest.mark.ddp
def test_drv_phase_under_two_process_ddp(tiny_data, tmp_path):
    """Step 1 → step 2 under DDP without find_unused_parameters: every rank steps every batch."""
    args = fit_overrides(
        tmp_path,
        **tiny_data,
        max_steps=3,
        **{
            "trainer.val_check_interval": 10,
            "trainer.devices": 2,
            "trainer.strategy": "ddp",
            "phase.denoise_start": 2,
            "phase.allow_random_init": True,
            "phase.image_every": 0,
        },
    )
    fit_ddp("drv/tiny.yaml", args)
    assert safe_load(tmp_path / "t" / "checkpoints" / "last.ckpt")["global_step"] == 3
