"""Benchmark scripts run on their smallest setting, so a script that breaks fails here and not
months later on someone's GPU machine. The studies that take a folder of images are in
test_study_smoke.py; gpu_check.py has test_gpu_check.py.

Each test asserts on the line its script exists to print (a ratio, a share, a table row)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.benchmarks.smoke import number_after, photos, run_benchmark
from tests.helpers.configs import REPO


def test_every_benchmark_script_has_a_smoke_test():
    sources = "".join(p.read_text() for p in Path(__file__).parent.glob("test_*.py"))
    run = set(re.findall(r'run_benchmark\(\s*"(\w+)"', sources)) | set(re.findall(r'"benchmarks/(\w+)\.py"', sources))
    scripts = {p.stem for p in (REPO / "benchmarks").glob("*.py")}
    assert scripts <= run, f"benchmark scripts no test runs: {sorted(scripts - run)}"


def test_lightning_overhead_runs_and_prints_its_ratio():
    out = run_benchmark("lightning_overhead", "--steps", "12")
    assert number_after("RATIO Trainer/plain step time = ", out) > 0


def test_codec_import_times_one_fresh_process():
    out = run_benchmark("codec_import", "--model", "hdc", "--rounds", "1")
    assert number_after("import hdc_lightning.codec \\+ load_codec", out) > 0
    assert "median of 1; lightning imported: " in out


def test_data_loader_builds_the_demo_data_and_compares_three_loaders(tmp_path):
    # 1 worker (not 0): the loaders' worker processes are part of what the script measures.
    args = ["--demo", tmp_path / "demo", "--batches", 2, "--rounds", 1, "--workers", 1, "--batch-size", 2]
    out = run_benchmark("data_loader", *args, "--crop", 64)
    assert "demo data:" in out  # built, as the script does when the folder is missing
    for loader in ("folder of PNGs (PIL)", "WebDataset, png shards", "WebDataset, raw shards"):
        assert number_after(re.escape(loader) + ".*ratio", out) > 0


@pytest.mark.ddp
def test_ddp_scaling_fits_one_and_two_processes(tiny_shards):
    # 20 steps: the rate is read between the logged steps at or after step 10, every 5 steps.
    out = run_benchmark("ddp_scaling", "--steps", 20, "--batch", 2, "--crop", 64, "--shards", tiny_shards)
    assert number_after("1 process :", out) > 0 and number_after("2 processes:", out) > 0
    assert number_after("ratio 2/1  :", out) > 0


def test_decode_breakdown_of_the_tiny_preset(tmp_path):
    image = photos(tmp_path, 64, 96) / "im0.png"
    out = run_benchmark("decode_breakdown", "--image", image, "--presets", "tiny", "--repeats", 1)
    assert 0 < number_after("DRV sampling share:", out) < 100
    assert number_after("decode / sum of network forwards: [\\d.]+ / [\\d.]+ =", out) > 0


def test_metric_cost_times_every_metric():
    # 192 px: the smallest frame MS-SSIM accepts (161 px), so every suite computes what it names.
    out = run_benchmark("metric_cost", "--size", "192x192", "--repeats", 1)
    assert "192x192 frame" in out
    for suite in ("psnr", "psnr\\+ms-ssim", "psnr\\+lpips", "psnr\\+dists", "all"):
        assert number_after(f"\n{suite} +[\\d.]+", out) > 0  # the ratio to PSNR alone


def test_perceptual_decode_time_of_the_tiny_preset(tmp_path):
    out = run_benchmark("perceptual_decode_time", "--data", photos(tmp_path, 64, 96), "--preset", "tiny")
    assert "1 images from" in out
    assert number_after("ratio inject / latent:", out) > 0
    assert number_after("ratio inject\\+ŷ / latent:", out) > 0


def test_rate_overhead_trains_a_tiny_lic_and_prints_its_ratio(tmp_path):
    folder = photos(tmp_path, 128, 160)  # 128² training crops
    args = ["--kodak", folder, "--photos", folder, "--steps", 2, "--max-images", 1]
    out = run_benchmark("rate_overhead", *args)
    assert "training the tiny preset for 2 steps" in out
    assert number_after("RATIO real/estimated bits =", out) > 0


def test_gpu_check_parts_golden_part_on_the_cpu(tmp_path):
    # gpu_check.py runs every part (test_gpu_check.py); this is the parts script's own command line.
    spec, result = tmp_path / "spec.json", tmp_path / "result.json"
    spec.write_text(json.dumps({"device": "cpu"}))
    run_benchmark("gpu_check_parts", "golden", spec, result)
    report = json.loads(result.read_text())
    models = {k: v for k, v in report.items() if k != "device"}
    assert models and all(v["same"] for v in models.values()), report
