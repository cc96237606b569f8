"""Throughput of one phase on 2 CPU processes (DDP, gloo) vs 1 process, measured side by side.

Runs ``hdc fit`` twice on the same config and data (demo shards by default), each for the
same number of steps, and reads images/s from the wall-clock stamps of the TensorBoard
scalars between a warm-up step and the last step (start-up and validation excluded by
construction: validation is off). Prints both rates and the ratio.

    .venv/bin/python benchmarks/ddp_scaling.py [--config experiments/lic/tiny.yaml] [--steps 60] [--shards PATTERN]

On a GPU machine pass ``--accelerator gpu`` to compare 2 GPUs vs 1 the same way.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEMO_SHARDS = "data/demo/train-{000000..000003}.tar"


def _scalar_walltimes(tb_dir: Path, tag: str = "train/loss") -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tb_dir), size_guidance={"scalars": 0})
    acc.Reload()
    tags = acc.Tags()["scalars"]
    if tag not in tags:
        tag = next((t for t in tags if t.startswith("train/")), None)
        if tag is None:
            raise SystemExit(f"no train/* scalars in {tb_dir}")
    return [(e.step, e.wall_time) for e in acc.Scalars(tag)]


def run(
    config: str, devices: int, steps: int, batch: int, crop: int, root: Path, accelerator: str, shards: str
) -> float:
    name = f"ddp{devices}"
    cmd = [
        sys.executable,
        "-m",
        "hdc_lightning",
        "fit",
        config,
        f"run.root={root}",
        f"run.name={name}",
        "run.overwrite=true",
        "run.rdp_figure=false",
        f"run.ckpt_every_n_steps={steps * 10}",
        f"trainer.accelerator={accelerator}",
        f"trainer.devices={devices}",
        f"trainer.strategy={'ddp' if devices > 1 else 'auto'}",
        f"trainer.max_steps={steps}",
        f"trainer.val_check_interval={steps * 10}",
        "trainer.limit_val_batches=0",
        "trainer.log_every_n_steps=5",
        "trainer.enable_progress_bar=false",
        f"data.train.batch_size={batch}",
        f"data.train.crop={crop}",
        f"data.train.shards={shards}",
        "data.train.num_workers=1",
        "data.val.folder=null",
    ]
    env = dict(os.environ)
    if accelerator == "cpu":
        # One intra-op thread per process: what DDP adds is a second worker, not more threads
        # (on a shared CPU, OpenMP threads that spin-wait would otherwise dominate the figure).
        env["OMP_NUM_THREADS"] = "1"
    subprocess.run(cmd, check=True, cwd=REPO, env=env, stdout=subprocess.DEVNULL)
    stamps = _scalar_walltimes(root / name / "tb")
    warm = [s for s in stamps if s[0] >= 10]
    if len(warm) < 2:  # one logged step after the warm-up gives no interval to time
        raise SystemExit(f"--steps {steps}: too few logged steps after the 10 warm-up steps; use at least 20")
    (s0, t0), (s1, t1) = warm[0], warm[-1]
    return (s1 - s0) * batch * devices / (t1 - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="experiments/lic/tiny.yaml")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--batch", type=int, default=4, help="per-process batch size")
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--accelerator", default="cpu")
    p.add_argument("--shards", default=DEMO_SHARDS, help="training shards (default: the demo data, built if missing)")
    args = p.parse_args()
    if args.shards == DEMO_SHARDS and not (REPO / "data" / "demo" / "val").is_dir():
        subprocess.run([sys.executable, "-m", "hdc_lightning", "demo-data", "data/demo"], check=True, cwd=REPO)
    with tempfile.TemporaryDirectory() as tmp:
        one, two = (
            run(args.config, n, args.steps, args.batch, args.crop, Path(tmp), args.accelerator, args.shards)
            for n in (1, 2)
        )
    print(
        f"config {args.config}, {args.accelerator}, per-process batch {args.batch} at {args.crop}², {args.steps} steps"
    )
    print(f"1 process : {one:8.1f} images/s")
    print(f"2 processes: {two:8.1f} images/s")
    print(f"ratio 2/1  : {two / one:8.2f}x")


if __name__ == "__main__":
    main()
