"""The `vq` phase: one optimizer step per batch, resume, strict reload, bf16, 2-process CPU DDP."""

import json
import os
import subprocess
import sys

import pytest
import torch

from hdc_lightning.checkpoints import safe_load
from hdc_lightning.train import build_phase
from tests.helpers.configs import REPO
from tests.helpers.vq_toy import run, toy_cfg


def _adam_steps(ckpt: dict) -> set[int]:
    return {int(s["step"]) for s in ckpt["optimizer_states"][0]["state"].values()}


def test_max_steps_counts_batches_resume_restores_both_groups_and_strict_reload(tmp_path):
    cfg = toy_cfg(tmp_path, "trainer.max_steps=2")
    trainer, phase = run(cfg)
    assert trainer.global_step == 2
    last = tmp_path / "toy" / "checkpoints" / "last.ckpt"
    first = safe_load(last)
    groups = first["optimizer_states"][0]["param_groups"]
    assert [g["name"] for g in groups] == ["generator", "discriminator"]
    n_gen, n_disc = (sum(1 for _ in m.parameters()) for m in (phase.model, phase.loss.discriminator))
    assert [len(g["params"]) for g in groups] == [n_gen, n_disc]
    assert _adam_steps(first) == {2}  # both groups stepped once per batch

    # The loss network is not saved; the weights reload with strict keys into a fresh phase,
    # and the stored CDF table of the index prior matches the stored logits.
    assert not any("lpips" in k for k in first["state_dict"])
    fresh = build_phase(first["hyper_parameters"]["cfg"])
    fresh.load_state_dict(first["state_dict"], strict=True)
    table = fresh.model.prior.cdf.clone()
    fresh.model.prior.update(force=True)
    assert torch.equal(fresh.model.prior.cdf, table)

    cfg = toy_cfg(tmp_path, "trainer.max_steps=4", "run.resume=true")
    trainer, _ = run(cfg, ckpt_path=str(last))
    assert trainer.global_step == 4
    # Restored Adam state: counts continue from 2 in the generator AND the discriminator group.
    assert _adam_steps(safe_load(last)) == {4}


def test_bf16_autocast_steps_stay_finite(tmp_path):
    cfg = toy_cfg(tmp_path, "trainer.max_steps=3", "trainer.precision=bf16-mixed", "phase.disc_start=0")
    trainer, phase = run(cfg)
    assert trainer.global_step == 3
    m = trainer.callback_metrics
    for key in ("train/loss", "train/l1", "train/lpips", "train/g_adv", "train/d_loss", "train/adv_weight", "val/psnr"):
        assert torch.isfinite(m[key]), key
    assert "train/nonfinite_steps" not in m  # no step was skipped
    assert all(torch.isfinite(p).all() for p in phase.parameters())

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "toy" / "tb"))
    events.Reload()
    tags = events.Tags()
    assert {"train/reconstruction", "val/reconstruction"} <= set(tags["images"])
    assert {"train/usage", "train/perplexity", "train/psnr", "val/bpp", "val/bpp_indices_estimate"} <= set(
        tags["scalars"]
    )


@pytest.mark.ddp
@pytest.mark.parametrize("update", ["grad", "ema"])
def test_gan_step_under_two_process_cpu_ddp(tmp_path, update):
    """No unused-parameter error without find_unused_parameters; ranks stay in sync (codebook
    restarts and, for the EMA codebook, its averages included)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    proc = subprocess.run(
        [sys.executable, "-m", "tests.helpers.vq_toy", str(tmp_path), f"model.args.codebook_update={update}"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world"] == 2 and r["step"] == 2 for r in ranks)
    assert ranks[0]["checksum"] == ranks[1]["checksum"]
