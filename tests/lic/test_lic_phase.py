"""Phase "lic": optimizer groups, `hdc fit experiments/lic/tiny.yaml`, resume across update()."""

from __future__ import annotations

import pytest
import torch

from hdc_lightning.checkpoints import safe_load
from hdc_lightning.cli import main
from hdc_lightning.errors import ConfigError
from hdc_lightning.losses.rate_distortion import ms_ssim_adaptive
from hdc_lightning.phases.lic import LICPretrain
from hdc_lightning.train import fit
from tests.helpers.configs import TINY_LIC, fit_overrides, tiny_config

CDF_KEY = "model.latent_codec.hyper.entropy_bottleneck._quantized_cdf"


def test_one_optimizer_two_disjoint_groups(tiny_data, tmp_path):
    phase = LICPretrain(tiny_config("lic", tmp_path, **tiny_data))
    conf = phase.configure_optimizers()
    opt = conf["optimizer"]
    assert len(opt.param_groups) == 2 and [g["name"] for g in opt.param_groups] == ["net", "aux"]
    net, aux = ({id(p) for p in g["params"]} for g in opt.param_groups)
    assert not net & aux and net | aux == {id(p) for p in phase.parameters()}
    quantiles = {id(p) for n, p in phase.named_parameters() if n.endswith(".quantiles")}
    assert aux == quantiles and opt.param_groups[1]["lr"] == 1e-3


def test_unknown_distortion_is_a_config_error(tiny_data, tmp_path):
    with pytest.raises(ConfigError, match="phase.distortion"):
        LICPretrain(tiny_config("lic", tmp_path, **tiny_data, **{"phase.distortion": "l1"}))


def test_ms_ssim_adapts_to_small_images():
    x = torch.rand(2, 3, 64, 48)
    assert ms_ssim_adaptive(x, x).item() == pytest.approx(1.0, abs=1e-4)
    assert ms_ssim_adaptive(x.flip(-1), x).item() < 0.9


def _scalars(tb_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(tb_dir))
    ea.Reload()
    return ea.Tags()


def test_hdc_fit_tiny_yaml_smoke(tiny_data, tmp_path, capsys):
    args = fit_overrides(tmp_path, **tiny_data, max_steps=3, every=1, **{"trainer.val_check_interval": 2})
    assert main(["fit", str(TINY_LIC), *args]) == 0
    run = tmp_path / "t"
    ckpt = safe_load(run / "checkpoints" / "last.ckpt")
    assert ckpt["global_step"] == 3
    assert ckpt["state_dict"][CDF_KEY].numel() > 0  # saved after the validation's update()
    tags = _scalars(run / "tb")
    for tag in (
        "train/bpp_est",
        "train/psnr",
        "train/aux_loss",
        "val/bpp",
        "val/bpp_est",
        "val/psnr",
        "val/rate_ratio",
    ):
        assert tag in tags["scalars"], tag
    assert "val/reconstruction" in tags["images"]


def test_resume_before_and_after_update(tiny_data, tmp_path):
    def run(max_steps: int, resume: bool):
        cfg = tiny_config(
            "lic",
            tmp_path,
            **tiny_data,
            max_steps=max_steps,
            every=1,
            **{"trainer.val_check_interval": 2, "run.resume": resume},
        )
        result = fit(cfg)
        return result, safe_load(result.last_ckpt)

    _, ck1 = run(1, resume=False)
    assert ck1["global_step"] == 1 and ck1["state_dict"][CDF_KEY].numel() == 0  # before any update()
    r3, ck3 = run(3, resume=True)  # loads the pre-update checkpoint, validates (update) at step 2
    assert r3.global_step == 3 and ck3["state_dict"][CDF_KEY].numel() > 0
    r4, ck4 = run(4, resume=True)  # loads the post-update checkpoint into a fresh model
    assert r4.global_step == 4 and ck4["global_step"] == 4
    assert ck4["state_dict"][CDF_KEY].shape == ck3["state_dict"][CDF_KEY].shape
