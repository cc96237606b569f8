"""What the benchmark smoke tests share: running a script as ``make bench`` does, and small inputs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.configs import REPO
from tests.helpers.images import save_image
from tests.helpers.reliability import cli_env

# A hang guard, not a speed target: each script takes 5-60 s here on a busy 2-core machine.
TIMEOUT_S = 300


def run_benchmark(script: str, *args: object, timeout: float = TIMEOUT_S) -> str:
    """Run ``benchmarks/<script>.py ARGS`` from the repository root; its stdout (it must exit 0)."""
    argv = [sys.executable, f"benchmarks/{script}.py", *map(str, args)]
    proc = subprocess.run(argv, cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.stdout


def number_after(pattern: str, text: str) -> float:
    """The number that ``pattern`` (a regex ending where the number starts) is followed by in ``text``."""
    found = re.search(pattern + r"\s*([-+]?\d+(?:\.\d+)?)", text)
    assert found, f"no {pattern!r} followed by a number in:\n{text[-2000:]}"
    return float(found.group(1))


def photos(folder: Path, height: int, width: int, n: int = 1) -> Path:
    """``n`` photo-like PNGs of ``height`` x ``width`` in ``folder`` (stand-ins for Kodak)."""
    for i in range(n):
        save_image(folder / f"im{i}.png", height, width, seed=i, style="photo")
    return folder


def skip_without_trunk(net: str, script: str) -> None:
    """Skip when the offline ImageNet trunk ``net`` ("alex", "vgg") is not installed."""
    from hdc_lightning.errors import HDCError, first_line
    from hdc_lightning.losses.perceptual import resolve_backbone

    try:
        resolve_backbone(net)
    except HDCError as e:
        pytest.skip(f"{script} needs the {net} trunk (`hdc weights` installs it): {first_line(e)}")
