"""GPU check: what a CUDA machine does with this code, measured in one run of ≤ 8 minutes.

    .venv/bin/python benchmarks/gpu_check.py [--out runs/gpu-check/gpu_check.json] [--cpu]

With a CUDA GPU it runs, each part in its own process under a time limit:
  1. each phase's paper preset (experiments/<phase>/paper.yaml, its own batch and crop) for
     25 bf16-mixed steps: median step time (CUDA-synchronised), images/s, peak GPU memory,
     then one validation with real bitstreams (the phase's own validation_step);
  2. ``hdc compress`` of a demo image on the CPU and with ``--device cuda`` (LIC and hybrid
     checkpoints from step 1): same bytes? each file decoded on the CPU and on the GPU;
  3. the committed golden files (tests/codec/golden) decoded on the CPU, on the GPU and on the
     CPU again: every discrete quantity must equal its pinned md5 (docs/format.md);
  4. a 20-step 1-GPU DDP run (NCCL) of the LIC paper preset, then its resume to 40 steps.
Without one it says so and runs the same parts on the tiny presets, 2 steps each, on the
CPU, so CI exercises the script. Prints a table, writes a JSON, exits 1 unless every
part passed. Data: the embedded demo data (built with ``hdc demo-data`` when missing).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PARTS_PY = Path(__file__).with_name("gpu_check_parts.py")
PHASES = ("lic", "vq", "drv", "fusion")
# Seconds each part may take (435 in all); the budget (default 460 s, of 8 min = 480) caps the total.
LIMIT_S = {"lic": 65, "vq": 65, "drv": 75, "fusion": 75, "codec": 75, "golden": 25, "ddp": 40, "ddp-resume": 40}
MIN_PART_S = 10  # a part with less time left than this is skipped, not started
# What a validation logs from the real bytes it wrote (first found; names differ between phases).
REAL_RATE_KEYS = ("val/bpp", "val/bpp_file", "val/bpp_real", "val/bpp_indices")
# Phases whose step changes midway in the paper schedule: the switch is moved into the run.
SWITCH = {
    "vq": ("phase.disc_start", ("reconstruction", "with_gan")),
    "drv": ("phase.denoise_start", ("step1", "step2")),
}


@dataclass
class Part:
    name: str
    kind: str  # fit | codec (gpu_check_parts.py)
    make_spec: Callable[[dict], dict | str]  # results so far -> spec, or why it cannot run
    check: Callable[[dict], str | None]  # result -> why it failed, or None


def probe(force_cpu: bool) -> dict:
    import lightning
    import torch

    info = {
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "cuda_build": torch.version.cuda,
        "gpu": None,
    }
    if not force_cpu and torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        info.update(
            gpu=p.name,
            gpu_memory_mib=round(p.total_memory / 2**20),
            capability=f"{p.major}.{p.minor}",
            gpu_count=torch.cuda.device_count(),
            bf16=torch.cuda.is_bf16_supported(),
        )
    return info


def ensure_data(data: Path) -> None:
    if not (data / "val").is_dir() or not sorted(data.glob("train-*.tar")):
        subprocess.run(
            [sys.executable, "-m", "hdc_lightning", "demo-data", str(data)],
            check=True,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
        )


def data_overrides(data: Path, val_images: int) -> list[str]:
    n = len(sorted(data.glob("train-*.tar")))
    return [
        f"data.train.shards={data}/train-{{000000..{n - 1:06d}}}.tar",
        f"data.val.folder={data / 'val'}",
        f"data.val.max_images={max(val_images, 1)}",
    ]


def plan(args: argparse.Namespace, gpu: bool, work: Path) -> list[Part]:
    preset = "paper" if gpu else "tiny"
    steps = args.steps or (25 if gpu else 2)
    warmup = min(5, steps - 1) if gpu else 1
    val = 2 if gpu else 1
    base = [
        f"run.root={work / 'runs'}",
        "run.overwrite=true",
        "run.rdp_figure=false",
        f"trainer.accelerator={'gpu' if gpu else 'cpu'}",
        "trainer.devices=1",
        "trainer.enable_progress_bar=false",
    ] + data_overrides(args.data, val)
    if args.precision != "config":
        base.append(f"trainer.precision={args.precision}")

    def fit_part(phase: str) -> Part:
        ov = base + [
            f"run.name={phase}",
            f"run.ckpt_every_n_steps={10 * steps}",
            f"trainer.max_steps={steps}",
            f"trainer.val_check_interval={steps}",
            f"trainer.limit_val_batches={val}",
        ]
        if phase in ("drv", "fusion"):  # random LIC/VQ weights cost the same time as trained ones
            ov += ["phase.allow_random_init=true", "phase.image_every=0"]
        if phase == "vq":
            ov.append("phase.image_every=0")
        spec = {"config": f"experiments/{phase}/{preset}.yaml", "warmup": warmup, "no_dists": not gpu}
        if phase in SWITCH:  # both halves of the step measured: switch after half the timed steps
            key, labels = SWITCH[phase]
            spec.update(switch=warmup + (steps - warmup) // 2, labels=labels)
            ov = ov + [f"{key}={spec['switch']}"]
        spec["overrides"] = ov
        return Part(phase, "fit", lambda _: spec, fit_failure)

    def codec_spec(results: dict) -> dict | str:
        ckpts = {p: results[p]["result"]["ckpt"] for p in ("lic", "fusion") if results.get(p, {}).get("status") == "ok"}
        if not ckpts:
            return "needs a checkpoint from the lic or fusion part"
        image = str(sorted((args.data / "val").glob("*.png"))[0])
        return {"device": "cuda" if gpu else "cpu", "image": image, "ckpts": ckpts, "workdir": str(work / "codec")}

    ddp_steps = 20 if gpu else 2
    ddp = base + [
        "run.name=ddp",
        "trainer.strategy=ddp",
        f"run.ckpt_every_n_steps={ddp_steps}",
        f"trainer.val_check_interval={10 * ddp_steps}",
        "trainer.limit_val_batches=0",
        "data.val.folder=null",
    ]
    ddp_cfg = f"experiments/lic/{preset}.yaml"
    ddp_spec = {"config": ddp_cfg, "overrides": ddp + [f"trainer.max_steps={ddp_steps}"], "warmup": 1}
    resume_ov = [o for o in ddp if o != "run.overwrite=true"] + [
        "run.resume=true",
        f"trainer.max_steps={2 * ddp_steps}",
    ]
    backend = "nccl" if gpu else "gloo"
    return [fit_part(p) for p in PHASES] + [
        Part(
            "codec",
            "codec",
            codec_spec,
            lambda r: None if r.get("ckpts") and all(k in r for k in r["ckpts"]) else "a checkpoint was not coded",
        ),
        Part(
            "golden",
            "golden",
            lambda _: {"device": "cuda" if gpu else "cpu"},
            lambda r: (
                None if all(v["same"] for k, v in r.items() if isinstance(v, dict)) else "a decoded quantity differs"
            ),
        ),
        Part("ddp", "fit", lambda _: ddp_spec, lambda r: ddp_failure(r, backend, 0, ddp_steps)),
        Part(
            "ddp-resume",
            "fit",
            lambda res: (
                {"config": ddp_cfg, "overrides": resume_ov, "warmup": 1}
                if res.get("ddp", {}).get("status") == "ok"
                else "needs the ddp part"
            ),
            lambda r: ddp_failure(r, backend, ddp_steps, 2 * ddp_steps),
        ),
    ]


def fit_failure(r: dict) -> str | None:
    if not r.get("timed_steps"):
        return "no timed training step"
    if r.get("nonfinite_steps"):
        return f"{r['nonfinite_steps']} non-finite losses"
    if real_bpp(r) is None:
        return f"validation logged none of {', '.join(REAL_RATE_KEYS)} (a rate from real bytes)"
    return None


def real_bpp(r: dict) -> float | None:
    return next((r["val"][k] for k in REAL_RATE_KEYS if k in r.get("val", {})), None)


def ddp_failure(r: dict, backend: str, start: int, end: int) -> str | None:
    got = (r.get("world_size"), r.get("backend"), r.get("start_step"), r.get("end_step"))
    if got != (1, backend, start, end):
        return (
            f"expected world 1, {backend}, steps {start}->{end}; got world {got[0]}, {got[1]}, steps {got[2]}->{got[3]}"
        )
    return None


def run_part(part: Part, spec: dict, limit: float, work: Path) -> dict:
    parts = work / "parts"
    parts.mkdir(parents=True, exist_ok=True)
    spec_file, result_file, log = (parts / f"{part.name}{ext}" for ext in (".spec.json", ".json", ".log"))
    spec_file.write_text(json.dumps(spec, indent=1))
    result_file.unlink(missing_ok=True)
    t0 = time.monotonic()
    with open(log, "w") as fh:
        # Own session: a part out of time is killed with every process it started (loader workers).
        proc = subprocess.Popen(
            [sys.executable, str(PARTS_PY), part.kind, str(spec_file), str(result_file)],
            cwd=REPO,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # a killed part's log keeps its last lines
        try:
            status = "ok" if proc.wait(timeout=limit) == 0 else "failed"
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            status = "timeout"
    result = json.loads(result_file.read_text()) if result_file.is_file() else {}
    entry = {
        "part": part.name,
        "status": status,
        "wall_s": round(time.monotonic() - t0, 1),
        "limit_s": round(limit),
        "log": str(log),
        "result": result,
    }
    if status == "ok" and (reason := part.check(result)):
        entry.update(status="failed", note=reason)
    elif status == "failed":
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
        entry["note"] = lines[-1][:300] if lines else "no output"
    elif status == "timeout":
        entry["note"] = f"stopped at its time limit ({limit:.0f} s)"
    return entry


def fmt(v, spec: str = "") -> str:
    """``format(v, spec)``, or a dash as wide as the number would be."""
    if v is None:
        width = spec.split(".")[0].lstrip("<>")
        return format("-", f">{width}") if width else "-"
    return format(v, spec)


def phase_rows(name: str, r: dict, status: str) -> list[str]:
    rows = [
        f"{name:8} {fmt(r.get('preset')):6} {fmt(r.get('batch')):>2}×{fmt(r.get('crop')):<7} "
        f"{fmt(r.get('precision')):10} {fmt(r.get('step_ms'), '8.1f')} {fmt(r.get('images_per_s'), '8.1f')} "
        f"{fmt(r.get('peak_train_mib'), '10.0f')} {fmt(r.get('peak_val_mib'), '8.0f')} "
        f"{fmt(r.get('val_s'), '6.1f')} {fmt(real_bpp(r), '10.4f')}  {status}"
    ]
    if r.get("step_ms_by_stage"):
        rows.append(
            " " * 9 + "step ms by stage: " + ", ".join(f"{k} {v:.1f}" for k, v in r["step_ms_by_stage"].items())
        )
    return rows


def codec_rows(r: dict) -> list[str]:
    dev, rows = r["device"], []
    for name in r.get("ckpts", []):
        if name in r:
            c = r[name]
            rows.append(
                f"codec {name:6} cpu vs {dev}: {c['bytes_cpu']} / {c['bytes_dev']} bytes, same bytes {c['same_bytes']}; "
                f"{dev} file decoded on cpu vs cpu file: max |Δ| {fmt(c['dev_file_on_cpu_vs_cpu_file_on_cpu'].get('max_abs'))}"
                f", vs decoded on {dev}: max |Δ| {fmt(c['dev_file_on_cpu_vs_on_dev'].get('max_abs'))}"
            )
    return rows


def golden_rows(r: dict) -> list[str]:
    return [
        f"golden {name}: decoded cpu → {r['device']} → cpu, discrete quantities as pinned: {v['same']}"
        for name, v in r.items()
        if isinstance(v, dict)
    ]


def ddp_rows(name: str, r: dict) -> list[str]:
    return [
        f"{name:10} world {r.get('world_size')}, {r.get('backend')}, steps {r.get('start_step')}→{r.get('end_step')}, "
        f"step {fmt(r.get('step_ms'), '.1f')} ms, peak {fmt(r.get('peak_train_mib'), '.0f')} MiB"
    ]


def table(report: dict) -> str:
    rows = ["phase    preset batch×crop precision   step ms    img/s  train MiB  val MiB  val s   bpp(real)  status"]
    for e in report["parts"]:
        r, name = e["result"], e["part"]
        if r and name in PHASES:
            rows += phase_rows(name, r, e["status"])
        elif r and name == "codec":
            rows += codec_rows(r)
        elif r and name == "golden":
            rows += golden_rows(r)
        elif r:
            rows += ddp_rows(name, r)
        if e["status"] != "ok":
            rows.append(
                f"  {name}: {e['status']}: {e.get('note', '')}" + (f"  (log: {e['log']})" if e["log"] != "-" else "")
            )
    return "\n".join(rows)


def git_revision() -> str:
    out = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--out",
        type=Path,
        default=REPO / "runs" / "gpu-check" / "gpu_check.json",
        help="JSON report; runs, logs and .hdc files go to its folder",
    )
    p.add_argument("--data", type=Path, default=REPO / "data" / "demo", help="demo data folder (built when missing)")
    p.add_argument("--cpu", action="store_true", help="CPU mode even when a GPU is present (what CI runs)")
    p.add_argument("--budget", type=float, default=460, help="seconds for the whole check; parts left over are skipped")
    p.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="multiply the budget and every part's limit (a CPU shared with other jobs: e.g. 4)",
    )
    p.add_argument(
        "--precision",
        default="bf16-mixed",
        help="trainer.precision of every training part; 'config': each config's own (32-true for lic, drv, fusion)",
    )
    p.add_argument(
        "--steps", type=int, default=None, help="training steps per phase (default: 25 on a GPU, 2 on the CPU)"
    )
    args = p.parse_args(argv)
    t0 = time.monotonic()
    args.budget *= args.time_scale
    args.out, args.data = args.out.resolve(), args.data.resolve()
    work = args.out.parent
    env = probe(args.cpu)
    gpu = env["gpu"] is not None
    if gpu and not env["bf16"] and args.precision == "bf16-mixed":
        args.precision = "16-mixed"  # pre-Ampere GPUs: fp16 autocast is the AMP they have
    print(
        f"GPU check: CUDA GPU {env['gpu']}: paper presets, {args.precision}"
        if gpu
        else "GPU check: no CUDA GPU "
        + ("used (--cpu)" if args.cpu else "found")
        + ": CPU mode, the same parts on the tiny presets, 2 steps each (this measures no GPU)",
        flush=True,
    )
    ensure_data(args.data)
    results: dict[str, dict] = {}
    for part in plan(args, gpu, work):
        left = args.budget - (time.monotonic() - t0)
        spec = part.make_spec(results)
        if isinstance(spec, str) or left < MIN_PART_S:
            note = spec if isinstance(spec, str) else f"time budget spent ({left:.0f} s left)"
            results[part.name] = {"part": part.name, "status": "skipped", "note": note, "result": {}, "log": "-"}
        else:
            limit = min(LIMIT_S[part.name] * args.time_scale, left)
            print(f"  {part.name} (limit {limit:.0f} s) ...", flush=True)
            results[part.name] = run_part(part, spec, limit, work)
    report = {
        "schema": 1,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
        "mode": "gpu" if gpu else "cpu",
        "git": git_revision(),
        "env": env,
        "precision": args.precision,
        "budget_s": args.budget,
        "time_scale": args.time_scale,
        "parts": list(results.values()),
        "ok": all(e["status"] == "ok" for e in results.values()),
    }
    report["wall_s"] = round(time.monotonic() - t0, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(table(report))
    print(
        f"{'all parts passed' if report['ok'] else 'SOME PARTS DID NOT PASS'} in {report['wall_s']:.0f} s; report: {args.out}"
    )
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
