"""Resume across update() under 2-process CPU DDP (gloo), as `hdc fit` runs it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from hdc_lightning.checkpoints import safe_load
from hdc_lightning.train import fit
from tests.helpers.configs import REPO, TINY_LIC, fit_overrides, tiny_config

CDF_KEY = "model.latent_codec.hyper.entropy_bottleneck._quantized_cdf"


@pytest.mark.ddp
def test_ddp_resume_before_and_after_update(tiny_data, tmp_path):
    common = {"every": 1, "trainer.val_check_interval": 2}
    fit(tiny_config("lic", tmp_path, **tiny_data, **common, max_steps=1))  # pre-update checkpoint
    ddp = {**common, "trainer.devices": 2, "trainer.strategy": "ddp", "run.resume": True}
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    ckpt = tmp_path / "t" / "checkpoints" / "last.ckpt"
    for steps in (3, 4):  # 3: resumes before update(), validates; 4: resumes after update()
        args = fit_overrides(tmp_path, **tiny_data, **ddp, max_steps=steps)
        proc = subprocess.run(
            [sys.executable, "-m", "hdc_lightning", "fit", str(TINY_LIC), *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "MEMBER: 2/2" in proc.stdout + proc.stderr  # the second rank really joined
        state = safe_load(ckpt)
        assert state["global_step"] == steps
        assert state["state_dict"][CDF_KEY].numel() > 0
