"""A real two-point pipeline whose first stage both points share: SIGKILL the pipeline while
that stage trains, rerun the same command, and both points finish from the one resumed run."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from hdc_lightning.checkpoints import safe_load
from tests.helpers.configs import REPO, TINY_LIC, fit_overrides
from tests.helpers.reliability import alive, children_of, cli_env, done_step, hdc_argv, run_hdc, stderr_tail, wait_for

EVERY, STEPS = 4, 24


def _recipe(tmp_path: Path, shards: str) -> Path:
    over = [
        o
        for o in fit_overrides(tmp_path, shards, name="x", max_steps=STEPS, every=EVERY)
        if not o.startswith(("run.root", "run.name"))
    ]
    listed = ", ".join(repr(o) for o in over)
    path = tmp_path / "pipeline.yaml"
    path.write_text(
        "\n".join(
            [
                "name: ks",
                f"root: {tmp_path / 'pruns'}",
                "stages:",
                f"  - {{name: a, config: {TINY_LIC}, overrides: [{listed}]}}",
                f"  - name: b\n    config: {TINY_LIC}\n    overrides: [{listed}]",
                "    init_from: {model: {stage: a, prefix: model.}}",
                "ladder:",
                "  - {name: p1, overrides: {b: [phase.lmbda=0.001]}}",
                "  - {name: p2, overrides: {b: [phase.lmbda=0.002]}}",
            ]
        )
        + "\n"
    )
    return path


def _step(run_dir: Path) -> int:
    try:
        return int(safe_load(run_dir / "checkpoints" / "last.ckpt")["global_step"])
    except Exception:  # noqa: BLE001 - not there yet
        return -1


def test_a_killed_shared_stage_resumes_once_for_every_point(tmp_path, tiny_shards):
    cfg = _recipe(tmp_path, tiny_shards)
    root = tmp_path / "pruns" / "ks"
    log = tmp_path / "first.log"
    with open(log, "wb") as f:
        proc = subprocess.Popen(hdc_argv("pipeline", cfg), cwd=REPO, env=cli_env(), stdout=f, stderr=subprocess.STDOUT)
    stage: list[int] = []

    def checkpointed() -> bool:
        if proc.poll() is not None:
            raise AssertionError("pipeline ended early:\n" + stderr_tail(log.read_text(errors="replace")))
        stage[:] = children_of(proc.pid)
        return _step(root / "p1" / "a") >= EVERY

    wait_for(checkpointed, 900, every=0.2, what="a checkpoint of the shared stage")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    for pid in stage:
        wait_for(lambda pid=pid: not alive(pid), 20, what=f"stage process {pid} to die with the pipeline")
    shared = (root / "p1" / "a").resolve()
    assert shared.parent.name == "shared" and done_step(shared) is None and 0 < _step(shared) < STEPS

    final = run_hdc("pipeline", cfg, timeout=1800)  # a loaded 2-core CI machine is slow
    assert final.returncode == 0, stderr_tail(final)
    out = log.read_text(errors="replace") + final.stdout
    assert (root / "p2" / "a").resolve() == shared
    assert done_step(shared) == STEPS and _step(shared) == STEPS
    assert out.count(f"shared/{shared.name} -> ks/p1/a, ks/p2/a: starting") == 1  # trained from scratch once
    assert f"shared/{shared.name} -> ks/p1/a, ks/p2/a: resuming" in final.stdout  # ... then continued
    b1, b2 = (root / "p1" / "b").resolve(), (root / "p2" / "b").resolve()
    assert b1 != b2 and done_step(b1) == STEPS and done_step(b2) == STEPS
    assert "3 stage runs complete (4 point-stages)" in final.stdout
