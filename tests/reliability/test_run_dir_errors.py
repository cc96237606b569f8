"""Disk full / unwritable run directory: one clear line and exit status 2 before training
starts (seconds, not hours), and nothing written that looks like progress."""

from __future__ import annotations

import shutil
import time

import pytest

from hdc_lightning.cli import main
from tests.helpers.configs import TINY_LIC, fit_overrides
from tests.helpers.reliability import check_one_line, run_hdc


@pytest.fixture(autouse=True)
def _keep_seed_env(monkeypatch):
    monkeypatch.delenv("PL_GLOBAL_SEED", raising=False)


@pytest.fixture(scope="module", autouse=True)
def _imported():
    # Time the refusal, not the one-off import of Lightning (the subprocess test covers the CLI).
    import hdc_lightning.data.datamodule  # noqa: F401
    import hdc_lightning.train  # noqa: F401


def _one_error_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.startswith("hdc fit: error:")]
    assert len(lines) == 1, text[-2000:]
    check_one_line(lines[0])
    return lines[0]


def _cases(tmp_path, shards):
    blocker = tmp_path / "a-file"
    blocker.write_text("a regular file where a folder should be")
    big = shutil.disk_usage(tmp_path).free // 2**20 + 10**6  # more MiB than the disk has free
    over = fit_overrides(blocker / "runs", shards, name="x", max_steps=2, every=2)
    return {
        "root under a regular file": (over, "not writable", blocker / "runs" / "x"),
        "resume under a regular file": (over + ["run.resume=true"], "not writable", blocker / "runs" / "x"),
        "less free space than run.min_free_mb": (
            fit_overrides(tmp_path / "runs", shards, name="full", max_steps=2, every=2) + [f"run.min_free_mb={big}"],
            "less than run.min_free_mb",
            tmp_path / "runs" / "full",
        ),
    }


@pytest.mark.parametrize(
    "case", ["root under a regular file", "resume under a regular file", "less free space than run.min_free_mb"]
)
def test_refused_in_seconds_before_training(tmp_path, tiny_shards, capsys, case):
    over, needle, run_dir = _cases(tmp_path, tiny_shards)[case]
    t0 = time.perf_counter()
    code = main(["fit", str(TINY_LIC), *over])
    elapsed = time.perf_counter() - t0
    err = capsys.readouterr().err
    assert code == 2
    line = _one_error_line(err)
    assert needle in line and str(run_dir) in line
    assert elapsed < 5, f"took {elapsed:.1f} s to refuse"
    assert not list(tmp_path.rglob("*.ckpt")) and not list(tmp_path.rglob("events.out.tfevents*"))


def test_cli_exit_status_and_message_for_an_unwritable_root(tmp_path, tiny_shards):
    """The same through a real ``hdc fit`` process: exit 2, one line, no model built."""
    over, needle, run_dir = _cases(tmp_path, tiny_shards)["root under a regular file"]
    proc = run_hdc("fit", TINY_LIC, *over, timeout=300)
    assert proc.returncode == 2
    assert needle in _one_error_line(proc.stderr)
    assert "Traceback" not in proc.stderr and "Trainable params" not in proc.stdout + proc.stderr
