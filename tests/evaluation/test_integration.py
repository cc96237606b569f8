"""End to end with the real LIC codec: a tiny LIC trained for two steps with the RDP
callback, then `hdc eval` on its checkpoint (real bitstreams, tiles, baselines, BD)."""

import json
from pathlib import Path

import pytest

from hdc_lightning.callbacks import RDP_FILE, RDPFigureCallback
from hdc_lightning.cli import main
from hdc_lightning.evaluation import classical
from hdc_lightning.evaluation.results import curve_from_points, write_curve
from tests.helpers.images import synthetic_image

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from hdc_lightning.config import load_config
    from hdc_lightning.data.shards import write_shards
    from hdc_lightning.train import fit

    root = tmp_path_factory.mktemp("lic")
    (root / "src").mkdir()
    (root / "val").mkdir()
    for i in range(4):
        classical.to_pil(synthetic_image(96, 96, seed=10 + i, style="photo")).save(root / "src" / f"{i}.png")
    for i in range(2):
        classical.to_pil(synthetic_image(128, 160, seed=20 + i, style="photo")).save(root / "val" / f"v{i}.png")
    write_shards(root / "src", root / "shards", max_samples=2, progress=False)
    # Another rate point of the same ladder, as its own callback would have left it.
    write_curve(
        root / "runs" / "lic-r0" / RDP_FILE,
        curve_from_points(
            "lic-r0",
            [{"bpp": 0.05, "psnr-rgb": 20.0, "ms-ssim-rgb": 0.6}],
            meta={"phase": "lic", "model": "lic", "preset": "tiny"},
        ),
    )
    cfg = load_config(
        REPO / "experiments" / "lic" / "tiny.yaml",
        [
            f"run.root={root / 'runs'}",
            "run.name=lic-r1",
            "trainer.max_steps=2",
            "trainer.val_check_interval=2",
            "trainer.accelerator=cpu",
            "trainer.enable_progress_bar=false",
            "trainer.limit_val_batches=2",
            f"data.train.shards={root / 'shards'}/train-{{000000..000001}}.tar",
            "data.train.crop=64",
            "data.train.batch_size=2",
            "data.train.num_workers=0",
            f"data.val.folder={root / 'val'}",
            "data.val.max_images=2",
        ],
    )
    callback = RDPFigureCallback(codecs=("jpeg",), max_images=2)
    result = fit(cfg, extra_callbacks=[callback])
    return root, result, callback


def test_callback_logs_the_rdp_figure_and_final_hparams(trained):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    root, result, callback = trained
    point = json.loads((result.run_dir / RDP_FILE).read_text())
    assert point["meta"].items() >= {"phase": "lic", "model": "lic", "preset": "tiny", "step": 2}.items()
    assert set(point["meta"]["per_image_bpp"]) == {"v0.png", "v1.png"}
    assert point["results"]["bpp"][0] == pytest.approx(result.metrics["val/bpp"])
    assert callback.drawn[0] == "ladder" and "jpeg" in callback.drawn  # sibling point + classical codec
    events = EventAccumulator(str(next((result.run_dir / "tb").glob("events.*"))), size_guidance={"images": 0})
    events.Reload()
    assert [e.step for e in events.Images("val/rdp")] == [2]
    assert events.Images("val/rdp")[0].encoded_image_string[:8] == b"\x89PNG\r\n\x1a\n"
    assert {"hp/bpp", "hp/psnr"} <= set(events.Tags()["scalars"])


def test_hdc_eval_with_the_real_lic_codec(trained, capsys):
    from hdc_lightning.codec import load_codec, unpack

    root, result, _ = trained
    out = root / "eval"
    argv = [
        "eval",
        str(result.run_dir),
        "--data",
        str(root / "val"),
        "-o",
        str(out),
        "--name",
        "lic",
        "--baselines",
        "jpeg",
        "--anchor",
        "jpeg",
        "--tile",
        "96",
        "--no-lpips",
        "--no-dists",
        "--no-fid",
        "--no-progress",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "peak memory (RSS)" in printed and "BD vs jpeg: lic" in printed
    per = json.loads((out / "per_image" / "lic" / "lic-r1.json").read_text())
    codec, whole = load_codec(result.last_ckpt, tile=96), load_codec(result.last_ckpt, tile=0)
    for rec in per["images"]:
        image = classical.from_pil(classical.Image.open(root / "val" / rec["name"]))
        assert rec["tiles"] == 4  # 128×160 in tiles of at most 96 px: 2 × 2
        tiles = [image[:, t : t + 64, x : x + 80].contiguous() for t in (0, 64) for x in (0, 80)]
        assert rec["bytes"] == len(codec.encode(image))  # the real tiled file
        assert unpack(codec.encode(image)).streams == [whole.encode(t) for t in tiles]  # tiles of one piece
        assert rec["bpp"] == pytest.approx(rec["bytes"] * 8 / (128 * 160))
    agg = json.loads((out / "lic.json").read_text())
    assert agg["results"]["bpp"] == [pytest.approx(per["aggregate"]["bpp"])]
    assert json.loads((out / "bd.json").read_text())["anchor"] == "jpeg"
    assert (out / "rd.png").stat().st_size > 0
