"""Step time of the LIC phase through Lightning's Trainer vs a plain PyTorch loop (target ≤ 1.03).

Two copies of the same ``LICPretrain`` module (tiny preset, same seed) train on the same
pre-built batches (4 × 3 × 128², in memory) with the same optimizer (one Adam, two
groups), the same net-group gradient clipping, the same loss arithmetic and the same
metrics for the logs (PSNR, MS-SSIM every ``log_every_n_steps=10`` steps): one copy
through ``Trainer.fit``, the other by a plain ``forward → loss → backward → clip → step
→ scheduler → zero_grad`` step. The two are interleaved step by step: at the start of
each Trainer batch a callback runs (and times) the plain step on the same batch, and
the Trainer step is timed from the end of that plain step to the start of the next
batch — so it counts everything Lightning adds per step (hooks, the logging of every
train scalar to TensorBoard with ``log_every_n_steps=10``, loop and scheduler
bookkeeping, fetching the batch), and both measurements see the same machine load.
The printed ratio is the median of the per-step ratios after warm-up; the ratio of the
mean step times (which includes the steps that write logs) is printed beside it.

    python benchmarks/lightning_overhead.py [--steps 200 --threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import lightning as L  # noqa: E402
from lightning.pytorch.loggers import TensorBoardLogger  # noqa: E402

from hdc_lightning.config import load_config  # noqa: E402
from hdc_lightning.data import TrainBatch  # noqa: E402
from hdc_lightning.evaluation.metrics import psnr_rgb  # noqa: E402
from hdc_lightning.losses.rate_distortion import ms_ssim_adaptive  # noqa: E402
from hdc_lightning.phases.lic import LICPretrain  # noqa: E402

WARMUP = 10
LOG_EVERY = 10  # tiny.yaml's trainer.log_every_n_steps


def make_phase(seed: int = 0) -> LICPretrain:
    cfg = load_config(REPO / "experiments" / "lic" / "tiny.yaml", ["data.val.folder=null"])
    torch.manual_seed(seed)
    return LICPretrain(cfg)


def make_batches(n: int, batch: int = 4, size: int = 128) -> list[TrainBatch]:
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(n):
        low = torch.rand(batch, 3, size // 8, size // 8, generator=g)
        x = torch.nn.functional.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)
        out.append(TrainBatch(x.clamp(0, 1), torch.tensor(0)))
    return out


class PlainStep:
    """The plain PyTorch training step on its own copy of the module."""

    def __init__(self):
        self.phase = make_phase()
        self.phase.train()
        conf = self.phase.configure_optimizers()
        self.opt, self.sched = conf["optimizer"], conf["lr_scheduler"]["scheduler"]
        self.step = 0

    def __call__(self, batch: TrainBatch) -> None:
        x = batch.images
        out = self.phase.model(x)
        loss = self.phase.loss(x, out.x_hat, out.likelihoods).loss + self.phase.model.aux_loss()
        self.step += 1
        if self.step % LOG_EVERY == 0:  # the metrics the training step computes for its logs
            psnr_rgb(x, out.x_hat)
            with torch.no_grad():
                ms_ssim_adaptive(out.x_hat.detach(), x)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.opt.param_groups[0]["params"], 1.0)
        self.opt.step()
        self.sched.step()
        self.opt.zero_grad()


class Interleave(L.Callback):
    """Runs a timed plain step before each Trainer step; times the Trainer step after it."""

    def __init__(self, plain: PlainStep):
        self.plain = plain
        self.plain_times: list[float] = []
        self.trainer_times: list[float] = []
        self._plain_end: float | None = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        t0 = time.perf_counter()
        if self._plain_end is not None:
            self.trainer_times.append(t0 - self._plain_end)
        self.plain(batch)
        self._plain_end = time.perf_counter()
        self.plain_times.append(self._plain_end - t0)

    def on_train_end(self, trainer, pl_module):
        self.trainer_times.append(time.perf_counter() - self._plain_end)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    batches = make_batches(args.steps)
    timer = Interleave(PlainStep())
    with tempfile.TemporaryDirectory() as log_dir:
        trainer = L.Trainer(
            accelerator="cpu",
            devices=1,
            max_steps=len(batches),
            max_epochs=-1,
            limit_val_batches=0,
            num_sanity_val_steps=0,
            gradient_clip_val=1.0,
            log_every_n_steps=LOG_EVERY,
            enable_progress_bar=False,
            enable_model_summary=False,
            enable_checkpointing=False,
            callbacks=[timer],
            logger=TensorBoardLogger(log_dir, name="", version="bench", default_hp_metric=False),
        )
        # batch_size=None: the loader hands over the pre-built TrainBatch objects unchanged
        loader = torch.utils.data.DataLoader(batches, batch_size=None, shuffle=False)
        trainer.fit(make_phase(), train_dataloaders=loader)
    plain, lit = timer.plain_times[WARMUP:], timer.trainer_times[WARMUP:]
    ratios = [t / p for t, p in zip(lit, plain)]
    print(f"plain step   median {statistics.median(plain) * 1e3:.1f} ms, mean {statistics.fmean(plain) * 1e3:.1f} ms")
    print(f"Trainer step median {statistics.median(lit) * 1e3:.1f} ms, mean {statistics.fmean(lit) * 1e3:.1f} ms")
    print(f"ratio of means {statistics.fmean(lit) / statistics.fmean(plain):.4f}")
    print(
        f"RATIO Trainer/plain step time = {statistics.median(ratios):.4f}  (target <= 1.03; median of "
        f"{len(ratios)} interleaved step pairs, batch 4x3x128x128, tiny preset, {args.threads} thread(s))"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
