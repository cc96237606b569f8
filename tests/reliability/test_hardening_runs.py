"""Issue 14, cases 1 and 3: a run never escapes run.root or deletes what is not a run of
ours, and done.json is written only for a finished stage with a loadable checkpoint."""

from __future__ import annotations

import os

import pytest

from hdc_lightning import rundir
from hdc_lightning.cli import main
from hdc_lightning.config import load_config
from hdc_lightning.errors import CheckpointError, ConfigError
from tests.helpers.configs import TINY_LIC, fit_overrides
from tests.helpers.reliability import check_one_line


@pytest.fixture(autouse=True)
def _keep_seed_env(monkeypatch):
    monkeypatch.delenv("PL_GLOBAL_SEED", raising=False)


def _error_line(err: str, command: str = "fit") -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith(f"hdc {command}: error:")]
    assert len(lines) == 1, err[-2000:]
    check_one_line(lines[0])
    return lines[0]


# ---- case 1: run.name stays under run.root ------------------------------------------------
@pytest.mark.parametrize("name", ["../victim", ".", "../../etc", "/some/where", "a/../../b", "a//b", "a/."])
def test_run_name_that_leaves_the_root_is_refused(tmp_path, name):
    with pytest.raises(ConfigError, match="plain folder names under run.root"):
        load_config(TINY_LIC, [f"run.root={tmp_path / 'runs'}", f"run.name={name}"])


def test_nested_plain_names_are_allowed(tmp_path):
    cfg = load_config(TINY_LIC, [f"run.root={tmp_path / 'runs'}", "run.name=ladder/q1"])
    assert rundir.run_dir_of(cfg) == tmp_path / "runs" / "ladder" / "q1"


def test_overwrite_with_an_escaping_name_leaves_the_victim_alone(tmp_path, tiny_shards, capsys):
    victim = tmp_path / "victim"
    (victim / "checkpoints").mkdir(parents=True)
    (victim / "config.yaml").write_text("precious: true\n")
    over = fit_overrides(tmp_path / "runs", tiny_shards, name="../victim", max_steps=2, every=2)
    over.append("run.overwrite=true")
    assert main(["fit", str(TINY_LIC), *over]) == 2
    assert "run.name" in _error_line(capsys.readouterr().err)
    assert (victim / "config.yaml").read_text() == "precious: true\n"


def _cfg(root, name="x", overwrite=True):
    return {"run": {"root": str(root), "name": name, "resume": False, "overwrite": overwrite, "min_free_mb": 1}}


def _our_run(path):
    (path / "checkpoints").mkdir(parents=True)
    (path / "checkpoints" / "last.ckpt").write_bytes(b"weights")
    (path / "tb").mkdir()
    (path / "config.yaml").write_text("run: {}\n")
    (path / "done.json").write_text("{}")


def test_overwrite_deletes_a_run_of_ours(tmp_path):
    root = tmp_path / "runs"
    _our_run(root / "x")
    run_dir, resume = rundir.prepare(_cfg(root))
    assert resume is None and not (run_dir / "done.json").exists()
    assert not (run_dir / "checkpoints" / "last.ckpt").exists()
    assert sorted(p.name for p in root.iterdir()) == ["x"]


def test_overwrite_moves_aside_a_folder_with_foreign_files(tmp_path, capsys):
    root = tmp_path / "runs"
    _our_run(root / "x")
    (root / "x" / "thesis.tex").write_text("months of work")
    rundir.prepare(_cfg(root))
    aside = [p for p in root.iterdir() if p.name.startswith("x.old-")]
    assert len(aside) == 1 and (aside[0] / "thesis.tex").read_text() == "months of work"
    assert "moved it to" in capsys.readouterr().err


def test_overwrite_moves_aside_a_symlinked_run_and_keeps_its_target(tmp_path):
    root, elsewhere = tmp_path / "runs", tmp_path / "elsewhere"
    _our_run(elsewhere)
    root.mkdir()
    os.symlink(elsewhere, root / "x")
    rundir.prepare(_cfg(root))
    assert (elsewhere / "checkpoints" / "last.ckpt").read_bytes() == b"weights"
    assert (root / "x").is_dir() and not (root / "x").is_symlink()


# ---- case 3: nonsensical hyper-parameters and done.json -------------------------------------
@pytest.mark.parametrize(
    "override, key",
    [
        ("phase.lr=nan", "phase.lr"),
        ("phase.lr=inf", "phase.lr"),
        ("phase.lr=-0.001", "phase.lr"),
        ("trainer.max_steps=0", "max_steps"),
        ("trainer.max_steps=-1", "max_steps"),
    ],
)
def test_nonsensical_hyper_parameters_are_refused_before_training(tmp_path, tiny_shards, capsys, override, key):
    over = fit_overrides(tmp_path / "runs", tiny_shards, name="bad", max_steps=2, every=2) + [override]
    assert main(["fit", str(TINY_LIC), *over]) == 2
    assert key in _error_line(capsys.readouterr().err)
    assert not (tmp_path / "runs" / "bad" / "done.json").exists()


def test_no_done_json_without_a_loadable_final_checkpoint(tmp_path, tiny_shards, monkeypatch):
    """A run that ends without writing last.ckpt (here: its writer disabled) fails loudly."""
    from hdc_lightning.train import fit

    monkeypatch.setattr("hdc_lightning.callbacks.LastCheckpoint._save", lambda self, trainer: None)
    cfg = load_config(
        TINY_LIC,
        fit_overrides(tmp_path / "runs", tiny_shards, name="nockpt", max_steps=1, every=2)
        + ["trainer.val_check_interval=100", "run.rdp_figure=false"],
    )
    with pytest.raises(CheckpointError, match="without a loadable final checkpoint"):
        fit(cfg)
    assert not (tmp_path / "runs" / "nockpt" / "done.json").exists()


def test_resuming_from_a_checkpoint_of_another_layout_is_one_line(tmp_path, tiny_shards, capsys):
    """A run folder trained by another hdc version (here: one parameter renamed, as a refactor
    renames a module) cannot be resumed: one line naming the file and the parts, not Lightning's
    traceback; the file is left as it was."""
    import torch

    over = fit_overrides(tmp_path / "runs", tiny_shards, name="old", max_steps=2, every=2)
    assert main(["fit", str(TINY_LIC), *over]) == 0
    last = tmp_path / "runs" / "old" / "checkpoints" / "last.ckpt"
    ckpt = torch.load(last, map_location="cpu", weights_only=False)
    key = next(k for k in ckpt["state_dict"] if k.startswith("model.g_s."))
    ckpt["state_dict"]["model.renamed." + key[len("model.g_s.") :]] = ckpt["state_dict"].pop(key)
    torch.save(ckpt, last)
    before = last.read_bytes()
    capsys.readouterr()
    resume = fit_overrides(tmp_path / "runs", tiny_shards, name="old", max_steps=4, every=2) + ["run.resume=true"]
    assert main(["fit", str(TINY_LIC), *resume]) == 2
    line = _error_line(capsys.readouterr().err)
    assert str(last) in line and "missing model.g_s.*" in line and "unexpected model.renamed.*" in line, line
    assert last.read_bytes() == before
