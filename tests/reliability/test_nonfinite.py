"""The NaN/Inf guard, through the real CLI: non-finite losses are skipped, counted and
logged; N in a row stop the run with one clear line and exit status 2; the checkpoint
left behind holds finite weights from a step no later than the stop.

A test-only phase (the LIC phase plus two knobs) makes the loss non-finite on purpose. It
is registered only inside the subprocess that runs the CLI (see ``_WRAPPER``), never in
the pytest process, so the registry the other tests see is unchanged.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field

import pytest
import torch

from hdc_lightning.checkpoints import safe_load
from tests.helpers.configs import REPO, TINY_LIC, fit_overrides
from tests.helpers.reliability import cli_env, done_step, stderr_tail, tb_scalars

PHASE = "lic-nonfinite-test"
MAX_NONFINITE = 3
STEPS = 16


def register_nonfinite_phase() -> None:
    """Register ``lic-nonfinite-test``: LIC pretraining whose loss turns non-finite on cue."""
    from hdc_lightning.phases.lic import LICConfig, LICPretrain
    from hdc_lightning.registry import register

    @dataclass
    class NonFiniteConfig(LICConfig):
        name: str = PHASE
        nan_steps: list[int] = field(default_factory=list)  # global steps whose loss is NaN
        nan_from: int = -1  # every step from this one on has a NaN loss
        blow_up_at: int = -1  # after this step's update, one weight becomes +inf (an exploded step)

    @register("phase", PHASE)
    class NonFiniteLIC(LICPretrain):
        Config = NonFiniteConfig

        def training_step(self, batch, batch_idx):
            p = self.c
            if self.global_step in p.nan_steps or 0 <= p.nan_from <= self.global_step:
                x = self.unpack_train_batch(batch)
                return self.guard_loss(self.model(x).x_hat.mean() * float("nan"))
            return super().training_step(batch, batch_idx)

        def on_train_batch_end(self, outputs, batch, batch_idx):
            if self.global_step == self.c.blow_up_at:
                with torch.no_grad():
                    next(self.model.g_s.parameters()).view(-1)[0] = float("inf")


# Run with the repository root as working directory, where ``python -c`` finds the tests package.
_WRAPPER = (
    "import sys; from tests.reliability.test_nonfinite import register_nonfinite_phase; register_nonfinite_phase(); "
    "from hdc_lightning.cli import main; sys.exit(main(sys.argv[1:]))"
)

SCENARIOS = {
    # loss NaN from step 5 on: skipped 5, 6, 7, then the stop
    "nan_from_5": ["phase.nan_from=5"],
    # the update of step 5 leaves an infinite weight: every later loss is NaN
    "blow_up_at_5": ["phase.blow_up_at=5"],
    # two isolated NaN steps: skipped, counted, and the run finishes
    "transient": ["phase.nan_steps=[3,4,9]"],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_shards):
    """Launch the three scenarios side by side; wait for all of them."""
    tmp = tmp_path_factory.mktemp("nonfinite")
    cfg = tmp / "nonfinite.yaml"
    cfg.write_text(f"extends: {TINY_LIC}\nphase:\n  name: {PHASE}\n")
    procs = {}
    for name, extra in SCENARIOS.items():
        over = fit_overrides(tmp / "runs", tiny_shards, name=name, max_steps=STEPS, every=2)
        argv = [
            sys.executable,
            "-c",
            _WRAPPER,
            "fit",
            str(cfg),
            *over,
            f"run.max_nonfinite_steps={MAX_NONFINITE}",
            *extra,
        ]
        procs[name] = subprocess.Popen(
            argv, cwd=REPO, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    out = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=600)
        out[name] = (subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr), tmp / "runs" / name)
    return out


def _finite(ckpt: dict) -> bool:
    return all(torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point())


def _stop_line(proc: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("hdc fit: error:")]
    assert len(lines) == 1, stderr_tail(proc)
    return lines[0]


def test_persistent_nan_stops_with_exit_2_and_keeps_a_good_checkpoint(runs):
    proc, run_dir = runs["nan_from_5"]
    assert proc.returncode == 2, stderr_tail(proc)
    line = _stop_line(proc)
    assert f"{MAX_NONFINITE} non-finite losses in a row" in line and "run.max_nonfinite_steps=3" in line
    assert "Traceback" not in proc.stderr
    stop = int(line.split("stopping at step ")[1].split(":")[0])
    assert stop == 5 + MAX_NONFINITE - 1
    ckpt = safe_load(run_dir / "checkpoints" / "last.ckpt")
    assert _finite(ckpt) and 4 <= ckpt["global_step"] <= stop
    assert ckpt["hdc"]["nonfinite_total"] <= MAX_NONFINITE
    assert done_step(run_dir) is None  # not marked finished: a pipeline would not skip it
    logged = tb_scalars(run_dir, "train/nonfinite_steps")
    assert [v for _, v in logged] == [1.0, 2.0, 3.0]


def test_exploded_weights_never_become_the_last_checkpoint(runs):
    proc, run_dir = runs["blow_up_at_5"]
    assert proc.returncode == 2, stderr_tail(proc)
    assert "non-finite losses in a row" in _stop_line(proc)
    ckpt = safe_load(run_dir / "checkpoints" / "last.ckpt")
    assert _finite(ckpt), "last.ckpt holds the exploded (non-finite) weights"
    assert ckpt["global_step"] <= 5


def test_isolated_nan_steps_are_skipped_counted_and_the_run_finishes(runs):
    proc, run_dir = runs["transient"]
    assert proc.returncode == 0, stderr_tail(proc)
    assert done_step(run_dir) == STEPS
    ckpt = safe_load(run_dir / "checkpoints" / "last.ckpt")
    assert ckpt["hdc"]["nonfinite_total"] == 3 and _finite(ckpt)
    assert tb_scalars(run_dir, "train/nonfinite_steps")[-1][1] == 3.0
