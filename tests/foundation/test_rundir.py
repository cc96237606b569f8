"""Run directory rules: refuse, resume, overwrite; writability; atomic checkpoints."""

import os

import pytest
import torch

from hdc_lightning import rundir
from hdc_lightning.checkpoints import atomic_torch_save, load_state_dict, safe_load
from hdc_lightning.errors import CheckpointError, ConfigError, DataError, RunDirError


def _cfg(tmp_path, **run):
    base = dict(root=str(tmp_path / "runs"), name="exp", resume=False, overwrite=False, min_free_mb=1)
    base.update(run)
    return {"run": base}


def test_fresh_then_refused_then_overwrite_then_resume(tmp_path, monkeypatch):
    for var in ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK"):
        monkeypatch.delenv(var, raising=False)
    run_dir, ckpt = rundir.prepare(_cfg(tmp_path))
    assert ckpt is None and (run_dir / "checkpoints").is_dir()
    rundir.write_metadata(run_dir, "run: {}\n")
    assert {"config.yaml", "git.txt", "pip-freeze.txt"} <= {p.name for p in run_dir.iterdir()}

    with pytest.raises(RunDirError, match="already exists; pass run.resume=true .* or run.overwrite=true"):
        rundir.prepare(_cfg(tmp_path))

    atomic_torch_save({"state_dict": {}}, rundir.last_ckpt_of(run_dir))
    _, ckpt = rundir.prepare(_cfg(tmp_path, resume=True))
    assert ckpt == rundir.last_ckpt_of(run_dir)

    run_dir2, ckpt = rundir.prepare(_cfg(tmp_path, overwrite=True))
    assert ckpt is None and not rundir.last_ckpt_of(run_dir2).exists()

    with pytest.raises(ConfigError, match="cannot both be true"):
        rundir.prepare(_cfg(tmp_path, resume=True, overwrite=True))


def test_other_ranks_do_not_check_or_create(tmp_path, monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert not rundir.is_launcher_rank_zero()
    run_dir, _ = rundir.prepare(_cfg(tmp_path))
    assert not run_dir.exists()  # rank 0 creates it, not this process


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to read-only folders")
def test_unwritable_run_dir(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    with pytest.raises(RunDirError, match="not writable"):
        rundir.check_writable(ro / "exp", 1)


def test_unwritable_run_dir_as_any_user(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(RunDirError, match="not writable"):
        rundir.check_writable(blocker / "exp", 1)


def test_too_little_free_space(tmp_path):
    with pytest.raises(RunDirError, match=r"MiB free .* run.min_free_mb"):
        rundir.check_writable(tmp_path / "exp", 1 << 40)


def test_atomic_save_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "last.ckpt"
    atomic_torch_save({"state_dict": {"w": torch.ones(2)}}, target)

    def broken_save(obj, f):
        open(f, "wb").write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(DataError, match="cannot write .No space left"):
        atomic_torch_save({"state_dict": {"w": torch.zeros(2)}}, target)
    monkeypatch.undo()
    assert torch.equal(safe_load(target)["state_dict"]["w"], torch.ones(2))  # old one intact
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temp left behind


def test_safe_load_errors(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        safe_load(tmp_path / "nope.ckpt")
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        safe_load(junk)


def test_safe_load_refuses_pickled_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "x": Evil()}, path)
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        safe_load(path)


def test_load_state_dict_prefix(tmp_path):
    path = tmp_path / "a.ckpt"
    torch.save({"state_dict": {"model.w": torch.ones(1), "other.w": torch.zeros(1)}}, path)
    assert list(load_state_dict(path, "model.")) == ["w"]
    with pytest.raises(CheckpointError, match="no weights under 'vq.'"):
        load_state_dict(path, "vq.")
