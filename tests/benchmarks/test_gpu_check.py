"""`make gpu-check` in CPU mode: every part of the GPU check runs (tiny presets, 2 steps each).

The check is written for a CUDA machine that nobody has had yet; these tests keep its code
paths (fit with the step clock, bf16-mixed, real-bitstream validation, the CLI codec
comparison, 1-process DDP and its resume, time limits) working and pin its JSON report.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PHASES = ("lic", "vq", "drv", "fusion")


def load_gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def test_gpu_check_cpu_mode(tmp_path):
    out = tmp_path / "check" / "gpu_check.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    # --time-scale 10: the limits are sized for a GPU machine; a shared CPU must not fail this test on time.
    # The whole check took 78 s on the 2-core CI machine (2026-12-07); 15 minutes means something hangs.
    argv = [
        "benchmarks/gpu_check.py",
        "--cpu",
        "--time-scale",
        "10",
        "--out",
        str(out),
        "--data",
        str(tmp_path / "demo"),
    ]
    proc = subprocess.run([sys.executable, *argv], cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "CPU mode" in proc.stdout and "all parts passed" in proc.stdout
    report = json.loads(out.read_text())
    assert report["mode"] == "cpu" and report["ok"] and report["env"]["gpu"] is None
    parts = {e["part"]: e for e in report["parts"]}
    assert list(parts) == [*PHASES, "codec", "golden", "ddp", "ddp-resume"]
    assert all(e["status"] == "ok" and e["wall_s"] <= e["limit_s"] for e in parts.values())
    for phase in PHASES:
        r = parts[phase]["result"]
        assert (r["preset"], r["batch"], r["crop"], r["precision"]) == ("tiny", 4, 128, "bf16-mixed")
        assert r["timed_steps"] == 1 and r["step_ms"] > 0 and r["images_per_s"] > 0
        assert r["peak_train_mib"] is None and r["val_s"] > 0  # no GPU memory to report on the CPU
        assert r["val"]["val/bpp"] > 0  # one validation with real bytes
    codec = parts["codec"]["result"]
    for name in ("lic", "fusion"):  # both encodes on the CPU here: bytes and pixels must agree exactly
        c = codec[name]
        assert c["same_bytes"] and c["bytes_cpu"] > 0
        assert c["dev_file_on_cpu_vs_cpu_file_on_cpu"]["max_abs"] == 0
    golden = parts["golden"]["result"]  # the committed files, decoded cpu → cpu → cpu here
    assert golden["small"]["same"] and golden["small-lic"]["same"]
    ddp, resume = parts["ddp"]["result"], parts["ddp-resume"]["result"]
    assert (ddp["backend"], ddp["world_size"], ddp["start_step"], ddp["end_step"]) == ("gloo", 1, 0, 2)
    assert (resume["start_step"], resume["end_step"]) == (2, 4)


def test_part_past_its_limit_is_killed(tmp_path):
    gc = load_gpu_check()
    part = gc.Part("lic", "fit", lambda _: {}, gc.fit_failure)
    entry = gc.run_part(part, {"config": "experiments/lic/tiny.yaml", "overrides": []}, 0.5, tmp_path)
    assert entry["status"] == "timeout" and "time limit" in entry["note"]
    assert entry["wall_s"] < 10 and entry["result"] == {}


def test_spent_budget_skips_parts_and_fails(tmp_path, capsys):
    gc = load_gpu_check()
    out = tmp_path / "gpu_check.json"
    assert gc.main(["--cpu", "--budget", "0", "--out", str(out), "--data", str(tmp_path / "demo")]) == 1
    report = json.loads(out.read_text())
    assert not report["ok"] and {e["status"] for e in report["parts"]} == {"skipped"}
    assert "time budget spent" in report["parts"][0]["note"] and "needs" in report["parts"][-1]["note"]
    assert "SOME PARTS DID NOT PASS" in capsys.readouterr().out
