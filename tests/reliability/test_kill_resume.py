"""Killed training: SIGKILL a real ``hdc fit`` / ``hdc pipeline`` at a random step after the
first checkpoint, rerun the same command, and check the run completes with the step count
of an uninterrupted run, while no ``*.ckpt`` file is ever seen half-written.

A watcher polls the checkpoint folders the whole time and loads (``weights_only=True``)
every new version of every ``*.ckpt`` it sees; temp files must not carry that suffix.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from hdc_lightning.checkpoints import safe_load
from hdc_lightning.fileio import is_temp
from tests.helpers.configs import REPO, TINY_LIC, fit_overrides
from tests.helpers.reliability import (
    alive,
    children_of,
    cli_env,
    done_step,
    env_int,
    hdc_argv,
    run_hdc,
    stderr_tail,
    wait_for,
)

EVERY = 4  # checkpoint cadence (steps); a tiny step takes ~0.1 s, so runs are dozens of steps
SEED = env_int("HDC_KILL_SEED", int(time.time()) % 10_000)


class CheckpointWatcher(threading.Thread):
    """Loads every new version of every ``*.ckpt`` under ``roots``; notes anything else."""

    def __init__(self, roots: list[Path], every: float = 0.02):
        super().__init__(daemon=True)
        self.roots, self.every = roots, every
        self.seen: dict[tuple, int] = {}  # (path, inode, size, mtime) -> global_step
        self.bad: list[str] = []
        self.temp_names: set[str] = set()
        self.steps: dict[Path, list[tuple[float, int]]] = {}  # run dir -> (time, step)
        self._stop_event = threading.Event()

    def latest_step(self, run_dir: Path) -> int:
        hist = self.steps.get(Path(run_dir).resolve())  # a pipeline's point/stage path is a link
        return hist[-1][1] if hist else -1

    def step_seconds(self, run_dir: Path, since: float) -> float | None:
        """Median seconds per step between consecutive checkpoints seen after ``since`` (a
        launch's monotonic time, so no pair spans a restart); None until two were seen.

        No guessed default: a guess of 1 s, 10× a tiny step, let the random kill land after
        the stage had already finished on a fast machine."""
        hist = [(t, s) for t, s in self.steps.get(Path(run_dir).resolve(), []) if t >= since]
        rates = sorted((t1 - t0) / (s1 - s0) for (t0, s0), (t1, s1) in zip(hist, hist[1:]) if s1 > s0 and t1 > t0)
        return rates[len(rates) // 2] if rates else None

    def ready_to_kill(self, run_dir: Path, target: int, since: float) -> bool:
        """A checkpoint at step >= ``target`` is there and this launch's step time is measured."""
        return self.latest_step(run_dir) >= target and self.step_seconds(run_dir, since) is not None

    def scan(self) -> None:
        for root in self.roots:
            for ckdir in root.glob("**/checkpoints"):
                try:
                    names = os.listdir(ckdir)
                except OSError:
                    continue
                for name in names:
                    path = ckdir / name
                    if not name.endswith(".ckpt"):
                        self.temp_names.add(name)
                        continue
                    try:
                        st = path.stat()
                    except FileNotFoundError:
                        continue
                    key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
                    if key in self.seen:
                        continue
                    try:
                        ckpt = safe_load(path)
                        step = int(ckpt["global_step"])
                        assert all(
                            torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point()
                        )
                    except FileNotFoundError:
                        continue
                    except Exception as e:  # noqa: BLE001 - any failure here is the bug we look for
                        self.bad.append(f"{path} ({st.st_size} bytes): {type(e).__name__}: {str(e)[:200]}")
                        continue
                    self.seen[key] = step
                    self.steps.setdefault(ckdir.parent.resolve(), []).append((time.monotonic(), step))

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.scan()
            time.sleep(self.every)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)
        self.scan()

    def check(self) -> None:
        assert not self.bad, "half-written or unreadable checkpoint seen: " + " | ".join(self.bad[:3])
        # temp files are hidden and never carry the .ckpt suffix (checked above by name)
        assert all(is_temp(n) for n in self.temp_names), self.temp_names


def _popen(argv: list[str], log: Path) -> subprocess.Popen:
    f = open(log, "ab")
    try:
        return subprocess.Popen(argv, cwd=REPO, env=cli_env(), stdout=f, stderr=subprocess.STDOUT)
    finally:
        f.close()


def _kill_after(
    proc: subprocess.Popen,
    watcher: CheckpointWatcher,
    run_dir: Path,
    target: int,
    rng: random.Random,
    log: Path,
    timeout: float = 240,
) -> int:
    """SIGKILL ``proc`` at a random moment after ``run_dir`` has a checkpoint at step >= target
    and this launch has written two (the step time the random delay is drawn in)."""
    launched = time.monotonic()

    def reached() -> bool:
        if proc.poll() is not None:
            raise AssertionError(
                f"the run ended (status {proc.returncode}) before step {target}:\n"
                + stderr_tail(log.read_text(errors="replace"))
            )
        return watcher.ready_to_kill(run_dir, target, launched)

    wait_for(reached, timeout, what=f"a checkpoint at step {target} in {run_dir}")
    time.sleep(rng.uniform(0, 0.5 * EVERY * watcher.step_seconds(run_dir, launched)))  # within the cadence
    if proc.poll() is not None:
        raise AssertionError(f"the run ended (status {proc.returncode}) before it could be killed")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    return watcher.latest_step(run_dir)


def _kill_resume_cycles(tmp_path: Path, shards: str, cycles: int, max_steps: int) -> dict:
    print(f"kill points drawn with HDC_KILL_SEED={SEED}")  # shown when the test fails
    rng = random.Random(SEED)
    runs = tmp_path / "runs"
    argv = hdc_argv(
        "fit",
        TINY_LIC,
        *fit_overrides(runs, shards, name="killed", max_steps=max_steps, every=EVERY),
        "run.resume=true",
    )  # the same command every time: starts fresh, then resumes
    # the uninterrupted reference runs alongside, outside the watched folder
    ref_argv = hdc_argv(
        "fit", TINY_LIC, *fit_overrides(tmp_path / "ref", shards, name="reference", max_steps=max_steps, every=EVERY)
    )
    run_dir = runs / "killed"
    watcher = CheckpointWatcher([runs])
    watcher.start()
    log = tmp_path / "killed.log"
    reference = _popen(ref_argv, tmp_path / "reference.log")  # uninterrupted, alongside
    kills = []
    try:
        for cycle in range(cycles):
            # a random checkpoint step past the current one, leaving room for the cycles after
            # a random checkpoint step past the current one, within an even share of the room left
            prev = max(0, watcher.latest_step(run_dir))
            room = (max_steps - 2 * EVERY) - (prev + EVERY)
            assert room >= 0, f"no room left for kill {cycle + 1} (last checkpoint at step {prev})"
            target = prev + EVERY + EVERY * rng.randint(0, room // EVERY // (cycles - cycle))
            proc = _popen(argv, log)
            step = _kill_after(proc, watcher, run_dir, target, rng, log)
            kills.append(step)
            assert done_step(run_dir) is None, "a killed run must not be marked done"
            last = safe_load(run_dir / "checkpoints" / "last.ckpt")
            assert target <= last["global_step"] < max_steps
        final = subprocess.run(argv, cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=600)
        assert final.returncode == 0, stderr_tail(final)
        assert reference.wait(timeout=600) == 0, stderr_tail((tmp_path / "reference.log").read_text())
    finally:
        if reference.poll() is None:
            reference.kill()
        watcher.stop()
    watcher.check()
    ref_step = done_step(tmp_path / "ref" / "reference")
    assert ref_step == max_steps
    assert done_step(run_dir) == ref_step, "the resumed run ended at another step than the uninterrupted one"
    assert safe_load(run_dir / "checkpoints" / "last.ckpt")["global_step"] == ref_step
    assert os.listdir(run_dir / "checkpoints") == ["last.ckpt"]  # temp files of killed saves are gone
    # resumed, not restarted: each relaunch began at its predecessor's checkpoint
    assert "Restoring states from the checkpoint path" in log.read_text(errors="replace") + final.stderr + final.stdout
    print(
        f"fit: {len(kills)} SIGKILLs after checkpoint steps {kills}; resumed to step {ref_step} "
        f"(uninterrupted: {ref_step}); {len(watcher.seen)} checkpoint versions loaded while running, none broken"
    )
    return {"kills_after_ckpt_step": kills, "final_step": ref_step, "seed": SEED}


def test_fit_killed_twice_resumes_to_the_same_step(tmp_path, tiny_shards):
    result = _kill_resume_cycles(tmp_path, tiny_shards, cycles=2, max_steps=64)
    assert len(result["kills_after_ckpt_step"]) == 2


@pytest.mark.slow
def test_fit_killed_many_times_resumes_to_the_same_step(tmp_path, tiny_shards):
    cycles = env_int("HDC_KILL_CYCLES", 6)
    result = _kill_resume_cycles(tmp_path, tiny_shards, cycles=cycles, max_steps=6 * EVERY * cycles + 4 * EVERY)
    assert len(result["kills_after_ckpt_step"]) == cycles


# ---- the staged pipeline ---------------------------------------------------------------------
def _pipeline_file(tmp_path: Path, shards: str, steps: int) -> Path:
    over = [
        o
        for o in fit_overrides(tmp_path, shards, name="x", max_steps=steps, every=EVERY)
        if not o.startswith(("run.root", "run.name"))
    ]
    lines = [
        "name: kr",
        f"root: {tmp_path / 'pruns'}",
        "stages:",
        f"  - {{name: a, config: {TINY_LIC}, overrides: [{', '.join(repr(o) for o in over)}]}}",
        f"  - name: b\n    config: {TINY_LIC}\n    overrides: [{', '.join(repr(o) for o in over)}]",
        "    init_from: {model: {stage: a, prefix: model.}}",
    ]
    path = tmp_path / "pipeline.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _pipeline_cycles(tmp_path: Path, shards: str, kills: int, steps: int) -> list[tuple[str, int]]:
    print(f"kill points drawn with HDC_KILL_SEED={SEED}")
    rng = random.Random(SEED + 1)
    cfg = _pipeline_file(tmp_path, shards, steps)
    root = tmp_path / "pruns" / "kr"
    watcher = CheckpointWatcher([tmp_path / "pruns"])
    watcher.start()
    log = tmp_path / "pipeline.log"
    done_kills = []
    try:
        # random (stage, checkpoint step) kill points, in pipeline order
        points = sorted(rng.sample([(s, k) for s in "ab" for k in range(EVERY, steps - 3 * EVERY + 1, EVERY)], kills))
        for stage, target in points:
            if done_step(root / stage) is not None or watcher.latest_step(root / stage) >= target:
                continue  # already past that point in an earlier rerun
            launched = time.monotonic()
            proc = _popen(hdc_argv("pipeline", cfg), log)
            stage_pid: list[int] = []

            def reached(proc=proc, stage=stage, target=target, stage_pid=stage_pid, launched=launched) -> bool:
                if proc.poll() is not None:
                    raise AssertionError("pipeline ended early:\n" + stderr_tail(log.read_text(errors="replace")))
                stage_pid[:] = children_of(proc.pid)
                return watcher.ready_to_kill(root / stage, target, launched)

            wait_for(reached, 300, what=f"stage {stage} checkpoint at step {target}")
            time.sleep(rng.uniform(0, 0.5 * EVERY * watcher.step_seconds(root / stage, launched)))
            proc.send_signal(signal.SIGKILL)  # the pipeline only: its stage must not live on
            proc.wait(timeout=30)
            for pid in stage_pid:
                wait_for(lambda pid=pid: not alive(pid), 20, what=f"stage process {pid} to die with the pipeline")
            done_kills.append((stage, watcher.latest_step(root / stage)))
            assert done_step(root / stage) is None
        final = run_hdc("pipeline", cfg, timeout=600)
        assert final.returncode == 0, stderr_tail(final)
    finally:
        watcher.stop()
    watcher.check()
    assert done_step(root / "a") == steps and done_step(root / "b") == steps
    for stage in "ab":
        assert safe_load(root / stage / "checkpoints" / "last.ckpt")["global_step"] == steps
    print(
        f"pipeline: {len(done_kills)} SIGKILLs at (stage, checkpoint step) {done_kills}; both stages ended at "
        f"step {steps}; {len(watcher.seen)} checkpoint versions loaded while running, none broken"
    )
    if done_kills and done_kills[-1][0] == "b":
        assert "a: finished at step" in final.stdout  # the finished stage is skipped, not rerun
    return done_kills


def test_pipeline_killed_mid_stage_resumes_to_the_same_steps(tmp_path, tiny_shards):
    kills = _pipeline_cycles(tmp_path, tiny_shards, kills=1, steps=40)
    assert len(kills) == 1


@pytest.mark.slow
def test_pipeline_killed_in_both_stages(tmp_path, tiny_shards):
    kills = _pipeline_cycles(tmp_path, tiny_shards, kills=env_int("HDC_KILL_CYCLES", 4), steps=60)
    assert {s for s, _ in kills} <= {"a", "b"} and len(kills) >= 2


def test_a_save_killed_midway_leaves_the_old_checkpoint_and_resume_removes_its_temp_file(tmp_path):
    """SIGKILL a process while it writes a 200 MB checkpoint over a good one: the good one
    stays loadable, and the temp file is removed when the run resumes."""
    from hdc_lightning.rundir import prepare

    ckdir = tmp_path / "runs" / "r" / "checkpoints"
    ckdir.mkdir(parents=True)
    torch.save({"global_step": 4, "state_dict": {"w": torch.ones(3)}}, ckdir / "last.ckpt")
    code = (
        "import sys, torch; from hdc_lightning.checkpoints import atomic_torch_save; "
        "atomic_torch_save({'global_step': 6, 'state_dict': {'w': torch.zeros(50_000_000)}}, sys.argv[1])"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(ckdir / "last.ckpt")], cwd=REPO, env=cli_env())
    try:
        wait_for(
            lambda: any(is_temp(n) for n in os.listdir(ckdir)) or proc.poll() is not None,
            120,
            every=0.001,
            what="the temp file of the save",
        )
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    temps = [n for n in os.listdir(ckdir) if n != "last.ckpt"]
    assert temps and all(n.startswith(".") and not n.endswith(".ckpt") for n in temps), os.listdir(ckdir)
    assert safe_load(ckdir / "last.ckpt")["global_step"] == 4  # the old checkpoint, whole
    cfg = {"run": {"root": str(tmp_path / "runs"), "name": "r", "resume": True, "overwrite": False, "min_free_mb": 1}}
    run_dir, resume_from = prepare(cfg)
    assert resume_from == ckdir / "last.ckpt" and os.listdir(ckdir) == ["last.ckpt"]
