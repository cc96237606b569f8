"""The tiny pipeline (lic → vq → drv → fusion, test-sized) under the validation contract:
every stage's TensorBoard log holds the RD/RP figure and the shared metric names, and the
hybrid stages measure both of their outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from hdc_lightning.evaluation.metrics import MetricSuite
from hdc_lightning.pipeline import load_pipeline, run_pipeline

REPO = Path(__file__).resolve().parents[2]
STAGES = ("lic", "vq", "drv", "fusion")


def _tiny_recipe_stage(name: str) -> dict:
    recipe = yaml.safe_load((REPO / "experiments/pipeline/tiny.yaml").read_text())
    return next(st for st in recipe["stages"] if st["name"] == name)


def _recipe(tmp: Path, data: dict, lpips_random: bool) -> Path:
    """experiments/pipeline/tiny.yaml's stages with two batches and one validation each."""
    exp = REPO / "experiments"
    common = [
        "trainer.max_steps=2",
        "trainer.val_check_interval=2",
        "trainer.limit_val_batches=2",
        "trainer.accelerator=cpu",
        "trainer.enable_progress_bar=false",
        "run.min_free_mb=1",
        f"data.train.shards={data['shards']}",
        "data.train.crop=64",
        "data.train.batch_size=2",
        "data.train.num_workers=0",
        "data.train.shuffle_buffer=4",
        f"data.val.folder={data['val']}",
        "data.val.max_images=2",
        f"phase.lpips_random_backbone={str(lpips_random).lower()}",
    ]
    recipe = {
        "name": "t",
        "root": str(tmp / "runs"),
        "stages": [
            {"name": "lic", "config": str(exp / "lic/tiny.yaml"), "overrides": common},
            {
                "name": "vq",
                "config": str(exp / "vq/tiny.yaml"),
                "overrides": common + ["phase.perceptual_weight=0", "phase.disc_start=1000000"],
            },
            {
                "name": "drv",
                "config": str(exp / "drv/tiny.yaml"),
                "overrides": common + ["phase.denoise_start=1"],
                "init_from": _tiny_recipe_stage("drv")["init_from"],
                "freeze": ["model.lic", "model.vq"],
            },
            {
                "name": "fusion",
                "config": str(exp / "fusion/tiny.yaml"),
                "overrides": common,
                "init_from": {"model": {"stage": "drv", "prefix": "model."}},
            },
        ],
    }
    path = tmp / "tiny-test.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


@pytest.fixture(scope="module")
def pipeline_runs(tiny_data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tinypipe")
    # Real LPIPS when its weights are here (`hdc weights`); otherwise the random-trunk switch,
    # which is logged under its own name so it can never pass for LPIPS.
    lpips_random = not MetricSuite(lpips=True).available("lpips")
    spec, path = load_pipeline(_recipe(tmp, tiny_data, lpips_random))
    run_pipeline(spec, path, log=lambda _: None)
    return tmp / "runs" / "t", ("lpips_random_trunk" if lpips_random else "lpips")


def _tags(run: Path) -> dict:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tb"), size_guidance={"images": 0})
    events.Reload()
    return events.Tags()


@pytest.mark.parametrize("stage", STAGES)
def test_every_stage_logs_the_contract_and_the_rdp_figure(pipeline_runs, stage):
    root, lpips = pipeline_runs
    run = (root / stage).resolve()
    tags = _tags(run)
    assert "val/rdp" in tags["images"] and "val/reconstruction" in tags["images"]
    dists = MetricSuite(lpips=False, dists=True).available("dists")
    expected = {"val/bpp", "val/psnr", f"val/{lpips}"} | ({"val/dists"} if dists else set())
    if stage in ("drv", "fusion"):
        expected |= {f"{k}_fidelity" for k in expected if k != "val/bpp"}
    assert expected <= set(tags["scalars"]), expected - set(tags["scalars"])
    point = json.loads((run / "rdp.json").read_text())
    assert point["results"]["bpp"][0] > 0 and set(point["meta"]["per_image_bpp"]) == {"v0.png", "v1.png"}
    assert ("fidelity" in point["meta"]) == (stage in ("drv", "fusion"))
