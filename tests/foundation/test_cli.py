"""The `hdc` CLI: help on every subcommand, one-line errors with exit status 2."""

import subprocess
import sys

import pytest

from hdc_lightning.cli import build_parser, main


def _hdc(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "hdc_lightning", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def _subcommands():
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return sorted(action.choices)


def test_help_on_every_subcommand(capsys):
    names = _subcommands()
    assert "fit" in names
    for name in names:
        with pytest.raises(SystemExit) as exc:
            main([name, "--help"])
        assert exc.value.code == 0, name
        assert "usage: hdc " + name in capsys.readouterr().out


def test_missing_config_is_one_line(tmp_path):
    out = _hdc("fit", str(tmp_path / "missing.yaml"))
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [f"hdc fit: error: {tmp_path / 'missing.yaml'}: config file not found"]


def test_unknown_key_is_one_line(repo_root, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"extends: {repo_root / 'experiments' / 'base.yaml'}\n")
    out = _hdc("fit", str(cfg), "trainer.max_stepz=3")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "trainer.max_stepz" in lines[0] and "Traceback" not in out.stderr


def test_bad_override_syntax(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("{}\n")
    assert main(["fit", str(cfg), "not-an-override"]) == 2
