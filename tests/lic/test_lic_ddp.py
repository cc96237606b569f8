"""Resume across update() under 2-process CPU DDP (gloo), as `hdc fit` runs it."""

from __future__ import annotations

import pytest

from hdc_lightning.checkpoints import safe_load
from hdc_lightning.train import fit
from tests.helpers.configs import REPO, TINY_LIC, fit_ddp, fit_overrides, tiny_config

CDF_KEY = "model.latent_codec.hyper.entropy_bottleneck._quantized_cdf"


@pytest.mark.ddp
def test_ddp_resume_before_and_after_update(tiny_data, tmp_path):
    common = {"every": 1, "trainer.val_check_interval": 2}
    fit(tiny_config("lic", tmp_path, **tiny_data, **common, max_steps=1))  # pre-update checkpoint
    ddp = {**common, "trainer.devices": 2, "trainer.strategy": "ddp", "run.resume": True}
    ckpt = tmp_path / "t" / "checkpoints" / "last.ckpt"
    for steps in (3, 4):  # 3: resumes before update(), validates; 4: resumes after update()
        fit_ddp(
            str(TINY_LIC.relative_to(REPO / "experiments")),
            fit_overrides(tmp_path, **tiny_data, **ddp, max_steps=steps),
            timeout=300,
        )
        state = safe_load(ckpt)
        assert state["global_step"] == steps
        assert state["state_dict"][CDF_KEY].numel() > 0
