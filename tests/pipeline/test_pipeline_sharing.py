"""Shared stage runs, changed stages, pipeline-wide overrides and the dry-run plan, with a
fake launcher standing in for ``hdc fit`` (it writes ``done.json``): no training here."""

from __future__ import annotations

import fcntl
import json
import re
import shutil
import threading
from pathlib import Path

import pytest

from hdc_lightning.cli import main
from hdc_lightning.config import load_config
from hdc_lightning.config.load import to_yaml
from hdc_lightning.errors import ConfigError
from hdc_lightning.pipeline import load_pipeline, plan, run_pipeline
from tests.helpers.reliability import wait_for

REPO = Path(__file__).resolve().parents[2]
TINY_LADDER = REPO / "experiments" / "pipeline" / "tiny-ladder.yaml"


class FakeFit:
    """Records each ``hdc fit`` command and finishes the stage at once."""

    def __init__(self):
        self.commands: list[list[str]] = []

    def __call__(self, cmd: list[str]) -> int:
        self.commands.append(cmd)
        args = dict(a.split("=", 1) for a in cmd[cmd.index("fit") + 2 :])
        run_dir = Path(args["run.root"]) / args["run.name"]
        (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(to_yaml(_cfg_of(cmd)))  # as `hdc fit` writes it
        (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"weights")
        (run_dir / "done.json").write_text(json.dumps({"global_step": 1, "metrics": {}}))
        return 0

    def names(self) -> list[str]:
        return [dict(a.split("=", 1) for a in c if "=" in a)["run.name"] for c in self.commands]


def _run(recipe: Path, root: Path, *overrides: str, points=None) -> tuple[FakeFit, list]:
    fake = FakeFit()
    spec, path = load_pipeline(recipe, [f"root={root}", *overrides])
    return fake, run_pipeline(spec, path, points, log=lambda _: None, launch=fake)


def _cfg_of(cmd: list[str]) -> dict:
    i = cmd.index("fit")
    return load_config(cmd[i + 1], cmd[i + 2 :])


def test_points_that_share_the_vq_stage_train_it_once(tmp_path):
    fake, plans = _run(TINY_LADDER, tmp_path)
    vq = [n for n in fake.names() if n.startswith("vq-")]
    assert len(vq) == 1, fake.names()  # 3 points, one VQ training
    assert len(fake.commands) == 10  # lic ×3, vq ×1, drv ×3, fusion ×3 (12 without sharing)
    base = tmp_path / "tiny-ladder"
    assert {(base / p / "vq").resolve() for p in ("t1", "t2", "t3")} == {tmp_path / "shared" / vq[0]}
    assert len({(base / p / "lic").resolve() for p in ("t1", "t2", "t3")}) == 3  # λ differs
    for cmd in fake.commands:  # every drv run starts from the one VQ run
        if "fit" in cmd and any(a.startswith("run.name=drv-") for a in cmd):
            assert f"run.init_from.model.vq.ckpt={tmp_path / 'shared' / vq[0] / 'checkpoints' / 'last.ckpt'}" in cmd
    again, _ = _run(TINY_LADDER, tmp_path)
    assert again.commands == []  # done.json skips every shared and own stage


def test_a_point_run_alone_reuses_the_shared_stage(tmp_path):
    first, _ = _run(TINY_LADDER, tmp_path, points=["t1"])
    second, _ = _run(TINY_LADDER, tmp_path, points=["t3"])
    assert sorted(n.split("-")[0] for n in first.names()) == ["drv", "fusion", "lic", "vq"]
    assert sorted(n.split("-")[0] for n in second.names()) == ["drv", "fusion", "lic"]


def _write_recipe(tmp_path: Path, lmbda: str, log_every: int = 10) -> Path:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        f"extends: {TINY_LADDER}\nname: tiny-ladder\n"
        "stages:\n"
        f"  - {{name: lic, config: {REPO}/experiments/lic/tiny.yaml, overrides: [phase.lmbda={lmbda}, "
        f"trainer.log_every_n_steps={log_every}]}}\n"
        f"  - {{name: vq, config: {REPO}/experiments/vq/tiny.yaml}}\n"
        f"  - name: drv\n    config: {REPO}/experiments/drv/tiny.yaml\n"
        "    init_from: {model.lic: {stage: lic, prefix: model.}, model.vq: {stage: vq, prefix: model.}}\n"
        "    freeze: [model.lic, model.vq]\n"
        "ladder: []\n"
    )
    return recipe


def test_a_changed_stage_is_a_new_stage_run_and_the_old_one_is_kept(tmp_path, capsys):
    _, before = _run(_write_recipe(tmp_path, "0.0003"), tmp_path)
    old = {p.stage.name: p.run_dir for p in before}
    fake, after = _run(_write_recipe(tmp_path, "0.0006"), tmp_path)
    new = {p.stage.name: p.run_dir for p in after}
    assert new["vq"] == old["vq"] and new["lic"] != old["lic"]
    assert new["drv"] != old["drv"]  # it starts from the changed LIC: a new stage too
    assert sorted(n.split("-")[0] for n in fake.names()) == ["drv", "lic"]
    assert (old["lic"] / "done.json").is_file()  # nothing was deleted or reused
    assert (tmp_path / "tiny-ladder" / "lic").resolve() == new["lic"]
    _write_recipe(tmp_path, "0.0003")
    assert main(["pipeline", str(tmp_path / "recipe.yaml"), f"root={tmp_path}", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"instead of {new['lic'].name} (changed: phase.lmbda)" in out  # back to the first λ: shown
    assert "3 stage runs: 3 done" in out  # ... and that run is still there


def test_logging_settings_do_not_change_a_stage(tmp_path):
    a = {p.key for p in plan(*load_pipeline(_write_recipe(tmp_path, "0.0003", log_every=10)))}
    b = {
        p.key
        for p in plan(
            *load_pipeline(
                _write_recipe(tmp_path, "0.0003", log_every=1),
                ["run.ckpt_every_n_steps=7", "trainer.enable_progress_bar=false"],
            )
        )
    }
    c = {p.key for p in plan(*load_pipeline(_write_recipe(tmp_path, "0.0003"), ["trainer.max_steps=9"]))}
    # a setting spelled out at its schema default is the same work (so is an option a code update adds)
    d = {p.key for p in plan(*load_pipeline(_write_recipe(tmp_path, "0.0003"), ["run.seed=42"]))}
    e = {p.key for p in plan(*load_pipeline(_write_recipe(tmp_path, "0.0003"), ["run.seed=43"]))}
    assert a == b == d and len({frozenset(a), frozenset(c), frozenset(e)}) == 3


def test_a_pipeline_wide_data_override_reaches_every_stage(tmp_path):
    shards, val = str(tmp_path / "train-{000000..000003}.tar"), str(tmp_path / "kodak")
    spec, path = load_pipeline(
        TINY_LADDER,
        [
            f"root={tmp_path}",
            f"data.train.shards={shards}",
            f"data.val.folder={val}",
            "trainer.max_steps=7",
            "trainer.devices=8",
        ],
    )
    plans = plan(spec, path)
    assert len(plans) == 10
    for p in plans:
        cfg = _cfg_of(p.command())
        assert cfg["data"]["train"]["shards"] == shards and cfg["data"]["val"]["folder"] == val
        # the recipe gives every stage its own max_steps: a stage's own override wins
        own = next(o for o in p.stage.overrides if o.startswith("trainer.max_steps="))
        assert cfg["trainer"]["max_steps"] == int(own.split("=")[1]) != 7
        assert cfg["trainer"]["devices"] == 8


@pytest.mark.parametrize(
    "item, says",
    [
        ("trainer.devicez=8", "devicez"),
        ("optimizer.lr=1", "expected name|root=VALUE"),
        ("run.root=/x", "set by the pipeline"),
        ("run.init_from.model.ckpt=/x", "set by the pipeline"),
        ("stages=[]", "expected name|root=VALUE"),
    ],
)
def test_bad_pipeline_overrides_fail_in_one_line(tmp_path, capsys, item, says):
    assert main(["pipeline", str(TINY_LADDER), f"root={tmp_path}", item, "--dry-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0], err


def test_dry_run_prints_the_graph_without_touching_the_disk(tmp_path, capsys):
    _run(TINY_LADDER, tmp_path, points=["t1"])
    assert main(["pipeline", str(TINY_LADDER), f"root={tmp_path}", "--dry-run"]) == 0
    out = capsys.readouterr().out
    rows = {
        line.split()[0]: line.split() for line in out.splitlines() if line.startswith("  ") and "-" in line.split()[0]
    }
    vq = next(r for k, r in rows.items() if k.startswith("vq-"))
    assert vq[1] == "done" and vq[-3:] == ["t1", "t2", "t3"]
    drv = [r for k, r in rows.items() if k.startswith("drv-")]
    assert len(drv) == 3 and all(
        any(x.startswith("vq-") for x in r) and any(x.startswith("lic-") for x in r) for r in drv
    )
    assert "10 stage runs: 4 done, 0 resumable, 6 to do (12 without sharing: 3 points × 4 stages)" in out
    assert not (tmp_path / "tiny-ladder" / "t2").exists()
    assert main(["pipeline", str(TINY_LADDER), f"root={tmp_path}", "--dry-run", "--point", "t2"]) == 0
    assert (
        "4 stage runs: 1 done, 0 resumable, 3 to do (4 without sharing: 1 point × 4 stages)" in capsys.readouterr().out
    )


def _to_old_layout(root: Path) -> None:
    """What the pipeline before shared stages left: a real folder per point and stage."""
    links = sorted(p for p in (root / "tiny-ladder").glob("*/*") if p.is_symlink())
    for link in links:
        target = link.resolve()
        link.unlink()
        shutil.copytree(target, link)
    shutil.rmtree(root / "shared")


def test_runs_of_the_old_layout_continue_and_are_never_deleted(tmp_path):
    _run(TINY_LADDER, tmp_path)
    _to_old_layout(tmp_path)
    (tmp_path / "tiny-ladder" / "t2" / "fusion" / "done.json").unlink()  # as if killed mid-stage
    fake, plans = _run(TINY_LADDER, tmp_path)
    assert fake.names() == [p.key for p in plans if p.stage.name == "fusion" and "t2" in p.points]
    assert fake.commands[0][-1] == "run.resume=true"  # it continues from its last.ckpt, moved into shared/
    base = tmp_path / "tiny-ladder"
    assert all((base / pt / st).is_symlink() for pt in ("t1", "t2", "t3") for st in ("lic", "vq", "drv", "fusion"))
    assert sorted(p.parent.name for p in base.glob("*/vq.old-layout")) == ["t2", "t3"]  # t1's copy was adopted
    assert not list(base.glob("*/lic.old-layout"))


def test_an_old_layout_run_of_another_config_is_moved_aside_not_reused(tmp_path):
    _run(TINY_LADDER, tmp_path, points=["t1"])
    _to_old_layout(tmp_path)
    fake, _ = _run(TINY_LADDER, tmp_path, "data.train.batch_size=2", points=["t1"])  # every stage changes
    assert sorted(n.split("-")[0] for n in fake.names()) == ["drv", "fusion", "lic", "vq"]
    base = tmp_path / "tiny-ladder" / "t1"
    assert all((base / f"{st}.old-layout" / "done.json").is_file() for st in ("lic", "vq", "drv", "fusion"))


def _dry_run(capsys, root: Path) -> str:
    capsys.readouterr()
    assert main(["pipeline", str(TINY_LADDER), f"root={root}", "--dry-run"]) == 0
    return capsys.readouterr().out


def test_a_second_pipeline_waits_for_the_one_training_a_shared_stage(tmp_path, capsys):
    spec, path = load_pipeline(TINY_LADDER, [f"root={tmp_path}"])
    vq = next(p for p in plan(spec, path, ["t1"]) if p.stage.name == "vq")
    vq.run_root.mkdir(parents=True)
    logs: list[str] = []
    fake = FakeFit()
    with open(vq.run_root / f".{vq.key}.lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as another pipeline training it would
        t = threading.Thread(target=run_pipeline, args=(spec, path, ["t1"], logs.append, fake))
        t.start()
        wait_for(lambda: any("waiting" in line for line in logs), 60, what="the second pipeline to wait")
        assert t.is_alive()
        assert re.search(rf"{vq.key} +running ", _dry_run(capsys, tmp_path))  # the plan shows it is taken
        FakeFit()(vq.command())  # the other pipeline finishes it...
    t.join(timeout=30)
    assert not t.is_alive() and not any(n.startswith("vq-") for n in fake.names())  # ...so it is skipped here


def test_ladder_recipes_do_not_list_the_same_point_twice():
    for name in ("ladder", "ablation", "tiny-ladder"):
        spec, path = load_pipeline(REPO / "experiments" / "pipeline" / f"{name}.yaml")
        plans = plan(spec, path)
        per_point = {pt: tuple(sorted(p.key for p in plans if pt in p.links)) for pt in (q.name for q in spec.ladder)}
        assert len(set(per_point.values())) == len(per_point), (name, per_point)


def test_unknown_point_and_reserved_names(tmp_path):
    spec, path = load_pipeline(TINY_LADDER, [f"root={tmp_path}"])
    with pytest.raises(ConfigError, match="no rate point t9"):
        plan(spec, path, ["t9"])
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"extends: {TINY_LADDER}\nname: shared\n")
    with pytest.raises(ConfigError, match="reserved"):
        load_pipeline(bad)
    bad.write_text(
        _write_recipe(tmp_path, "0.0003").read_text().replace("ladder: []", "ladder: [{name: a}, {name: a}]")
    )
    with pytest.raises(ConfigError, match="appears twice"):
        load_pipeline(bad)


@pytest.mark.parametrize("recipe", sorted((REPO / "experiments" / "pipeline").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_recipe_plans(tmp_path, capsys, recipe):
    """Every recipe, the shipped model's own (small, small-ablation) included, loads, validates
    each stage's config and prints its plan, without writing anything."""
    assert main(["pipeline", str(recipe), f"root={tmp_path}", "--dry-run"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "stage runs:" in out and " to do" in out
    assert not any(tmp_path.iterdir())
