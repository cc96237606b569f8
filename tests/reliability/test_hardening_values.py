"""Issue 24, cases 12, 13, 15 and 16: values no run could use are one-line errors before a run
folder exists, eval's numeric options are bounded, and a SIGTERM'd fit exits non-zero with a
resumable checkpoint and one line saying so."""

from __future__ import annotations

import signal
import subprocess

import pytest

from hdc_lightning.checkpoints import safe_load
from hdc_lightning.cli import main
from tests.helpers.configs import REPO, TINY_LIC, fit_overrides
from tests.helpers.images import save_image
from tests.helpers.reliability import check_one_line, cli_env, done_step, hdc_argv, one_error, time_bound, wait_for


# ---- cases 15 and 16: trainer, run and phase values ------------------------------------------
@pytest.mark.parametrize(
    "override, key",
    [
        ("run.seed=-1", "run.seed"),
        ("trainer.devices=0", "trainer.devices"),
        ("trainer.accelerator=bogus", "trainer.accelerator"),
        ("trainer.precision=bogus", "trainer.precision"),
        ("trainer.val_check_interval=0", "trainer.val_check_interval"),
        ("trainer.gradient_clip_val=nan", "trainer.gradient_clip_val"),
        ("phase.lmbda=nan", "phase.lmbda"),
        ("phase.lmbda=-1", "phase.lmbda"),
        ("phase.lr=nan", "phase.lr"),
        ("phase.aux_lr=0", "phase.aux_lr"),
        ("run.ckpt_every_n_steps=0", "run.ckpt_every_n_steps"),
    ],
)
def test_unusable_values_fail_before_a_run_folder_exists(tmp_path, tiny_shards, capsys, override, key):
    overrides = fit_overrides(tmp_path / "runs", tiny_shards, max_steps=4)
    one_error(["fit", TINY_LIC, *overrides, override], capsys, key)
    assert not (tmp_path / "runs").exists()
    # the corrected command then runs (no half-made folder in its way)
    assert main(["fit", str(TINY_LIC), *overrides]) == 0
    assert done_step(tmp_path / "runs" / "t") == 4


def test_print_config_refuses_them_too(capsys):
    one_error(["fit", TINY_LIC, "phase.lr=nan", "--print-config"], capsys, "phase.lr", "finite")


# ---- cases 12 and 16: eval's numbers ---------------------------------------------------------
@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--tile", "1"], "--tile"),
        (["--tile", "63"], "--tile"),
        (["--tile", "2049"], "--tile"),  # over what a file of one piece may hold
        (["--tile", "-5"], "--tile"),
        (["--limit", "-1"], "--limit"),
        (["--limit", "0"], "--limit"),
    ],
)
def test_eval_numbers_are_bounded(tmp_path, lic_ckpt, capsys, extra, needle):
    save_image(tmp_path / "img" / "a.png", 64, 64, seed=0)
    out = tmp_path / "eval"
    one_error(["eval", lic_ckpt, "--data", tmp_path / "img", "-o", out, *extra], capsys, needle)
    assert not out.exists()


# ---- case 13: SIGTERM is a pre-emption ---------------------------------------------------------
def test_sigterm_exits_non_zero_with_a_resumable_checkpoint(tmp_path, tiny_shards):
    run_dir = tmp_path / "runs" / "t"
    last = run_dir / "checkpoints" / "last.ckpt"
    argv = hdc_argv("fit", TINY_LIC, *fit_overrides(tmp_path / "runs", tiny_shards, max_steps=100_000, every=2))
    proc = subprocess.Popen(argv, cwd=REPO, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: last.is_file() or proc.poll() is not None, 240, what="the first checkpoint")
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    lines = [ln for ln in err.splitlines() if ": error: " in ln]
    assert len(lines) == 1 and "SIGTERM" in lines[0] and "run.resume=true" in lines[0], err[-2000:]
    check_one_line(lines[0])
    step = safe_load(last)["global_step"]
    assert f"step {step}" in lines[0] and step > 0
    assert done_step(run_dir) is None  # not finished: a pipeline will resume it


# ---- case 11: alias bombs and depth ------------------------------------------------------------
_BOMB = "\n".join(
    ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    + [f"{chr(98 + k)}: &{chr(98 + k)} [{', '.join(['*' + chr(97 + k)] * 10)}]" for k in range(8)]
    + ["phase: {name: lic}"]
)


@pytest.mark.parametrize("text, needle", [(_BOMB, "YAML aliases"), ("x: " + "[" * 5000 + "]" * 5000, "nested")])
def test_config_bombs_are_refused_at_once(tmp_path, capfd, text, needle):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(text + "\n")
    assert len(text) < 500 or needle == "nested"  # a few hundred bytes
    with time_bound(30, "loading a YAML bomb"):
        one_error(["fit", cfg, "--print-config"], capfd, str(cfg), needle)


def test_a_recipe_bomb_is_refused_too(tmp_path, capfd):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(_BOMB.replace("phase: {name: lic}", "name: p") + "\n")
    with time_bound(30, "loading a recipe bomb"):
        one_error(["pipeline", recipe, "--dry-run"], capfd, str(recipe), "YAML aliases")


def test_override_bombs_are_refused(capfd):
    chain = ", ".join(f"&{n} [{', '.join([f'*{p}'] * 10)}]" for p, n in zip("abcdefg", "bcdefgh"))
    bomb = f"model.args.x=[&a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1], {chain}]"
    with time_bound(30, "an override bomb"):
        one_error(["fit", TINY_LIC, bomb, "--print-config"], capfd, "YAML aliases")
        one_error(["fit", TINY_LIC, "model.args.x=" + "[" * 3000 + "]" * 3000, "--print-config"], capfd, "nested")
