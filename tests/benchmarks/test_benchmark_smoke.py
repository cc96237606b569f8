"""Benchmark scripts run on their smallest setting, so a script that breaks fails here and not
months later on someone's GPU machine."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers.configs import REPO
from tests.helpers.reliability import cli_env


def test_lightning_overhead_runs_and_prints_its_ratio():
    argv = [sys.executable, "benchmarks/lightning_overhead.py", "--steps", "12"]
    proc = subprocess.run(argv, cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "RATIO Trainer/plain step time = " in proc.stdout
