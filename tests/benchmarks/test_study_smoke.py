"""The studies that take a folder of evaluation images (Kodak for the published tables), each on
one or two small photo-like images and the shipped models, so a study that breaks fails here."""

from __future__ import annotations

import json
import re

from tests.benchmarks.smoke import number_after, photos, run_benchmark, skip_without_trunk
from tests.helpers.datasets import write_image_shards
from tests.helpers.models import random_init_checkpoint


def test_exact_entropy_cost_codes_one_image_both_ways(tmp_path):
    out = run_benchmark("exact_entropy_cost", "--data", photos(tmp_path, 64, 96), "--limit", 1)
    assert "1 images, model small-lic" in out
    # The same CDF tables on both paths: the rates differ by rounding, not by percents.
    assert abs(number_after("exact vs float:", out)) < 1


def test_learning_curve_of_a_snapshot_file(tmp_path):
    ckpt = random_init_checkpoint(tmp_path / "snapshot.ckpt", "hdc")  # a file: its step is read from it
    out = run_benchmark("learning_curve", "--data", photos(tmp_path / "img", 64, 96), ckpt, "-o", tmp_path / "out")
    assert number_after("bpp", out) > 0 and number_after("psnr_fidelity", out) > 0
    points = json.loads((tmp_path / "out" / "learning_curve.json").read_text())["points"]
    assert [p["ckpt"] for p in points] == [str(ckpt)]


def test_lic_study_ladder_against_avif(tmp_path):
    ladder = ["small-lic-lo", "small-lic", "small-lic-hi"]  # BD needs the three points
    data = photos(tmp_path / "img", 128, 160)  # large enough for AVIF to reach the top rung
    out = run_benchmark("lic_study", "--data", data, "--ladder", *ladder, "-o", tmp_path / "out")
    for ref in ladder:
        assert number_after(f"{ref}: LIC", out) > 0
    assert "bd_psnr_lic_vs_avif_db:" in out
    result = json.loads((tmp_path / "out" / "lic_study.json").read_text())
    assert [p["ckpt"] for p in result["points"]] == ladder


def test_operating_point_rate_control_on_one_image(tmp_path):
    report = tmp_path / "op.json"
    out = run_benchmark("operating_point", "--data", photos(tmp_path, 64, 96), "--targets", 0.4, "-o", report)
    assert number_after("im0.png: plain", out) > 0
    summary = json.loads(report.read_text())["summary"]["0.4"]
    assert summary["images"] == 1 and summary["over"] == 0  # a chosen file over R breaks the promise


def test_portability_matrix_of_one_kernel_set(tmp_path):
    # One kernel set: encode and decode workers (tests/codec/test_portability.py runs them all).
    args = ["--data", photos(tmp_path, 64, 96), "--models", "small-lic", "--sets", "default/ALL"]
    out = run_benchmark("portability", *args, "-o", tmp_path / "matrix")
    assert "small-lic: 1 images" in out
    assert "   default/ALL same" in out  # its own file at 1 and 2 threads: the same latent


def test_realism_axis_on_two_patches(tmp_path):
    skip_without_trunk("vgg", "realism_axis.py")
    # Two 256² images: the fewest 256-px patches KID takes.
    out = run_benchmark("realism_axis", "--data", photos(tmp_path, 256, 256, n=2))
    assert "kid-vgg16 on 2 images" in out
    assert all(f"  {ladder} " in out for ladder in ("blur", "jpeg", "noise")) and out.count("monotone: ") == 3


def test_small_study_on_one_image(tmp_path):
    args = ["--data", photos(tmp_path / "img", 64, 96), "--dists-images", 0, "--crops", "im0.png"]
    out = run_benchmark("small_study", *args, "-o", tmp_path / "out")
    for curve in ("lic", "hdc-perceptual", "hdc-fidelity", "vq", "jpeg", "webp", "avif"):
        assert number_after(f"\n{curve} +0", out) > 0  # the table's bpp of the curve's first point
    study = json.loads((tmp_path / "out" / "study.json").read_text())
    assert study["images"] == 1 and "bd_rate_percent" in study
    assert (tmp_path / "out" / "rd.png").is_file() and (tmp_path / "out" / "crops.png").is_file()


def test_vq_study_trains_and_measures_the_tiny_variant(tmp_path):
    skip_without_trunk("alex", "vq_study.py")  # the variants train with the real LPIPS
    shards = write_image_shards(tmp_path / "shards", shards=1, per_shard=4, size=128)
    args = ["--data", photos(tmp_path / "img", 128, 160), "--shards", shards, "--variants", "tiny"]
    args += ["--steps", 2, "--every", 1, "--val-images", 1, "--root", tmp_path / "runs", "-o", tmp_path / "out"]
    out = run_benchmark("vq_study", *args)
    assert number_after("\ntiny +", out) > 0  # the variant's PSNR
    report = json.loads((tmp_path / "out" / "vq_study.json").read_text())
    assert report["steps"] == 2 and list(report["report"]) == ["tiny"]


def test_mlicpp_equivalence_compares_a_reference_folder(tmp_path):
    """The comparison half of the script (the reference half needs MLIC++'s checkout): a folder
    written as its reference side writes it, from our tiny model in the published layout."""
    import torch

    from tests.helpers.models import tiny_model
    from tests.helpers.published_mlicpp import published_state, randomise

    source, _ = tiny_model("mlicpp")
    randomise(source, 0)
    source = source.double()
    torch.save({"state_dict": published_state(source)}, tmp_path / "mlicpp_random.pth.tar")
    x = torch.rand(1, 3, 128, 192, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        out = source(x)
        y = source.g_a(x)
    outputs = {"x": x, "y": y, "x_hat": out.x_hat, "y_lk": out.likelihoods["y"], "z_lk": out.likelihoods["z"]}
    torch.save(outputs, tmp_path / "reference_outputs.pt")
    text = run_benchmark("mlicpp_equivalence", "--reference", tmp_path)
    assert text.strip().splitlines()[-1] == "EQUIVALENT"
    assert float(re.search(r"x_hat: (\S+)", text).group(1)) <= 1e-6  # printed as %.3g


def test_anchor_sigma_sweep_on_one_image(tmp_path):
    skip_without_trunk("alex", "anchor_sigma.py")
    args = ["--data", photos(tmp_path / "img", 64, 96), "--sigmas", "0,8", "--no-dists", "-o", tmp_path / "a.json"]
    out = run_benchmark("anchor_sigma", *args)
    assert number_after("σ=   0  psnr-rgb", out) > 0 and number_after("σ=   8  psnr-rgb", out) > 0
    assert "1 images, model hdc/small#" in out and "mask none" in out
    report = json.loads((tmp_path / "a.json").read_text())
    assert list(report["summary"]) == ["0", "8"] and len(report["images"]) == 1
