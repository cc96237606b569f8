"""`hdc shards`, `hdc demo-data` and data errors through the command line: one line, exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hdc_lightning.cli import main

REPO = Path(__file__).resolve().parents[1]


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_shards_on_a_missing_folder(tmp_path, capsys):
    assert main(["shards", str(tmp_path / "nope"), str(tmp_path / "out")]) == 2
    line = one_error_line(capsys)
    assert line.startswith("hdc shards: error:") and "nope" in line and "does not exist" in line


def test_shards_writes_and_reports(tmp_path, capsys):
    for i in range(5):
        Image.fromarray(np.full((20, 20, 3), i, np.uint8)).save(tmp_path / f"{i}.png")
    (tmp_path / "bad.jpg").write_bytes(b"no")
    code = main(["shards", str(tmp_path), str(tmp_path / "out"), "--max-samples", "2", "--quiet", "--prefix", "t"])
    out = capsys.readouterr().out
    assert code == 0
    assert "wrote 5 images into 3 shard(s)" in out and "bad.jpg" in out
    assert f"data.train.shards={tmp_path / 'out' / 't-{000000..000002}.tar'}" in out


def test_bad_option_value_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["shards", str(tmp_path), str(tmp_path / "o"), "--max-samples", "0"])
    assert exit_.value.code == 2 and "must be >= 1" in capsys.readouterr().err


def test_fit_with_a_shard_pattern_that_matches_nothing(tmp_path, capsys):
    config = REPO / "experiments" / "lic" / "tiny.yaml"
    if not config.exists():
        pytest.skip(f"{config} not present in this checkout")
    pattern = str(tmp_path / "none-{000000..000003}.tar")
    code = main(["fit", str(config), f"data.train.shards={pattern}", f"run.root={tmp_path / 'runs'}"])
    assert code == 2
    line = one_error_line(capsys)
    assert line.startswith("hdc fit: error:") and pattern in line and "matches no file" in line


def test_module_entry_point_and_help():
    proc = subprocess.run(
        [sys.executable, "-m", "hdc_lightning", "demo-data", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and "scikit-image" in proc.stdout
