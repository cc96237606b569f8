"""The drv/fusion configs and the pipeline recipes: every stage command loads and validates."""

from __future__ import annotations

import pytest

from hdc_lightning.config import load_config
from hdc_lightning.phases.base import flatten_sources
from hdc_lightning.pipeline import load_pipeline, plan
from tests.helpers.configs import REPO

PIPELINES = ["tiny", "paper", "ladder", "ablation"]
# The drv stage's sources: LIC and VQ, and the VQ decoder again as the perceptual decoder's start.
DRV_SOURCES = {
    "model.lic": "model.",
    "model.vq": "model.",
    "model.perceptual.g_s": "model.g_s.",
    "model.perceptual.post_quant": "model.post_quant.",
}


def stage_config(p) -> dict:
    """The config one planned stage's ``hdc fit`` command resolves to."""
    cmd = p.command()
    return load_config(cmd[cmd.index("fit") + 1], cmd[cmd.index("fit") + 2 :])


@pytest.mark.parametrize("name", PIPELINES)
def test_pipeline_stage_commands_validate(name, tmp_path):
    # A fresh root: stages already run under ./runs (e.g. by `make demo`) would plan resumes instead.
    spec, path = load_pipeline(REPO / "experiments" / "pipeline" / f"{name}.yaml", [f"root={tmp_path}"])
    plans = plan(spec, path)
    assert [p.stage.name for p in plans[:4]] == ["lic", "vq", "drv", "fusion"]
    for p in plans:
        cfg = stage_config(p)  # every key known, every type right
        if p.stage.name in ("drv", "fusion"):
            sources = flatten_sources(cfg["run"]["init_from"])
            expected = DRV_SOURCES if p.stage.name == "drv" else {"model": "model."}
            assert {a: s["prefix"] for a, s in sources.items()} == expected
            assert cfg["model"]["name"] == "hdc"


def test_drv_and_fusion_stages_agree_on_the_model():
    """A fusion stage loads the drv stage's weights: same model section at every point."""
    for name in PIPELINES:
        spec, path = load_pipeline(REPO / "experiments" / "pipeline" / f"{name}.yaml")
        plans = plan(spec, path)
        for drv, fusion in zip(
            [p for p in plans if p.stage.name == "drv"], [p for p in plans if p.stage.name == "fusion"]
        ):
            cfgs = [stage_config(q) for q in (drv, fusion)]
            assert cfgs[0]["model"] == cfgs[1]["model"], (name, drv.run_root)


def test_small_recipe_hybrid_stages_build_one_model():
    """Every hybrid stage of the `small` recipe builds the same model (each loads the one before
    it), and it is the shipped model's before the two settings the export adds (mask policy and
    colour anchor, docs/small.md)."""
    import torch

    from hdc_lightning import pretrained

    spec, path = load_pipeline(REPO / "experiments" / "pipeline" / "small.yaml")
    every = {p.stage.name: stage_config(p)["model"] for p in plan(spec, path)}
    models = {stage: m for stage, m in every.items() if m["name"] == "hdc"}
    assert set(models) == {"drv", "fusion", "realism", "realism_lo"}
    assert all(m == models["drv"] for m in models.values()), models
    shipped = torch.load(pretrained.weights_path("small"), map_location="cpu", weights_only=True)
    args = dict(shipped["hyper_parameters"]["cfg"]["model"]["args"])
    assert set(args.pop("parts")) == {"masks", "perceptual"}  # the export's settings
    assert {k: v for k, v in models["drv"]["args"].items() if k != "parts"} == args
