"""The parts of ``benchmarks/gpu_check.py``, each run in a child process it can time out.

    python benchmarks/gpu_check_parts.py {fit|codec} SPEC.json RESULT.json

``fit`` trains one phase through :func:`hdc_lightning.train.fit` with a clock callback
(step times, peak GPU memory, one validation); ``codec`` runs ``hdc compress`` and
``hdc decompress`` (the CLI's own ``main``) on two devices and compares bytes and pixels.
A fit part writes what it has at the start of validation and at the end, so a part
killed for time still leaves its training figures behind.
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

MIB = 2**20


def _write(path: str, result: dict) -> None:
    tmp = Path(path).with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1, default=str))
    tmp.replace(path)


def _rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux: KiB


def make_clock(warmup: int, switch: int | None, labels: tuple[str, str], dump: Callable[[], None]):
    """A Lightning callback timing each train batch (hook to hook, CUDA-synchronised)."""
    import lightning as L
    import torch

    class StepClock(L.Callback):
        def __init__(self) -> None:
            self.steps: list[tuple[int, float, float]] = []  # (global step, seconds, end stamp)
            self.start_step = self.end_step = None
            self.world_size, self.backend = 1, None
            self.train_peak = self.val_peak = self.reserved_peak = None
            self.val_s = None
            self.nonfinite = 0

        def _sync(self, module) -> bool:
            cuda = module.device.type == "cuda"
            if cuda:
                torch.cuda.synchronize(module.device)
            return cuda

        def on_train_start(self, trainer, module) -> None:
            self.start_step = trainer.global_step  # > 0 after a resume
            self.world_size = trainer.world_size
            dist = torch.distributed
            self.backend = dist.get_backend() if dist.is_available() and dist.is_initialized() else None
            if self._sync(module):
                torch.cuda.reset_peak_memory_stats(module.device)

        def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
            self._sync(module)
            self._t0, self._at = time.perf_counter(), trainer.global_step

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
            self._sync(module)
            now = time.perf_counter()
            self.steps.append((self._at, now - self._t0, now))

        def _peaks(self, module) -> int | None:
            if not self._sync(module):
                return None
            self.reserved_peak = max(self.reserved_peak or 0, torch.cuda.max_memory_reserved(module.device))
            peak = torch.cuda.max_memory_allocated(module.device)
            torch.cuda.reset_peak_memory_stats(module.device)
            return peak

        def on_validation_start(self, trainer, module) -> None:
            if trainer.sanity_checking:
                return
            self.train_peak = self._peaks(module)
            self._v0 = time.perf_counter()
            dump()

        def on_validation_end(self, trainer, module) -> None:
            if trainer.sanity_checking:
                return
            self.val_peak = self._peaks(module)
            self.val_s = round(time.perf_counter() - self._v0, 3)

        def on_train_end(self, trainer, module) -> None:
            if self.train_peak is None:
                self.train_peak = self._peaks(module)
            self.end_step = trainer.global_step
            logged = trainer.callback_metrics.get("train/nonfinite_steps", 0)  # the guard's own count
            self.nonfinite = max(int(getattr(module, "_nonfinite_total", 0)), int(logged))

        def summary(self, batch: int) -> dict[str, Any]:
            first = (self.start_step or 0) + warmup
            timed = [i for i, s in enumerate(self.steps) if s[0] >= first]
            out: dict[str, Any] = {
                "timed_steps": len(timed),
                "start_step": self.start_step,
                "end_step": self.end_step,
                "world_size": self.world_size,
                "backend": self.backend,
                "nonfinite_steps": self.nonfinite,
            }
            if timed:
                med = statistics.median(self.steps[i][1] for i in timed)
                out["step_ms"] = round(med * 1000, 2)
                out["images_per_s"] = round(batch * self.world_size / med, 2)
                if timed[0] > 0:  # loader waits and logging included: from the end of the step before
                    span = self.steps[timed[-1]][2] - self.steps[timed[0] - 1][2]
                    out["loop_images_per_s"] = round(batch * self.world_size * len(timed) / span, 2)
                if switch is not None:
                    by = {
                        labels[0]: [self.steps[i][1] for i in timed if self.steps[i][0] < switch],
                        labels[1]: [self.steps[i][1] for i in timed if self.steps[i][0] >= switch],
                    }
                    out["step_ms_by_stage"] = {k: round(statistics.median(v) * 1000, 2) for k, v in by.items() if v}
            for key, value in (
                ("peak_train_mib", self.train_peak),
                ("peak_val_mib", self.val_peak),
                ("peak_reserved_mib", self.reserved_peak),
            ):
                out[key] = None if value is None else round(value / MIB, 1)
            out["val_s"] = self.val_s
            out["peak_rss_mib"] = _rss_mib()
            return out

    return StepClock()


def _adjust(cfg: dict, spec: dict) -> tuple[list[str], list[str]]:
    """Overrides that depend on the machine (and why): LPIPS weights, DISTS in CPU mode."""
    from hdc_lightning.errors import HDCError
    from hdc_lightning.losses.perceptual import resolve_backbone

    phase, extra, notes = cfg.get("phase", {}), [], []
    if float(phase.get("perceptual_weight", 0) or 0) > 0 and not phase.get("lpips_random_backbone"):
        try:
            resolve_backbone(phase.get("lpips_net", "alex"), phase.get("lpips_backbone"))
        except HDCError:  # offline machine without the file: a random trunk costs the same
            extra.append("phase.lpips_random_backbone=true")
            notes.append("no LPIPS backbone file: the LPIPS loss ran with a random trunk (same compute)")
    if spec.get("no_dists") and phase.get("val_dists"):
        extra.append("phase.val_dists=false")
        notes.append("CPU mode: no DISTS at validation (its VGG16 costs seconds per image on a CPU)")
    return extra, notes


def part_fit(spec: dict, result_path: str) -> dict:
    """Train ``spec['config']`` with ``spec['overrides']``; time it with a StepClock."""
    from hdc_lightning.config import load_config
    from hdc_lightning.train import fit

    overrides = list(spec["overrides"])
    extra, notes = _adjust(load_config(spec["config"], overrides), spec)
    overrides += extra
    cfg = load_config(spec["config"], overrides)
    batch, crop = int(cfg["data"]["train"]["batch_size"]), int(cfg["data"]["train"]["crop"])
    result: dict[str, Any] = {
        "config": spec["config"],
        "preset": cfg["model"].get("preset"),
        "batch": batch,
        "crop": crop,
        "precision": cfg["trainer"]["precision"],
        "strategy": cfg["trainer"]["strategy"],
        "steps": int(cfg["trainer"]["max_steps"]),
        "overrides": overrides,
        "notes": notes,
    }
    clock = make_clock(
        int(spec.get("warmup", 1)),
        spec.get("switch"),
        tuple(spec.get("labels", ("a", "b"))),
        lambda: _write(result_path, {**result, **clock.summary(batch), "partial": True}),
    )
    t0 = time.perf_counter()
    out = fit(cfg, extra_callbacks=[clock])
    result.update(clock.summary(batch))
    result["fit_s"] = round(time.perf_counter() - t0, 2)
    result["val"] = {k: round(v, 5) for k, v in sorted(out.metrics.items()) if k.startswith("val/")}
    result["ckpt"] = str(out.last_ckpt)
    return result


def _cli(*argv: str) -> float:
    from hdc_lightning.cli import main

    t0 = time.perf_counter()
    rc = main(list(argv))
    if rc:
        raise RuntimeError(f"hdc {' '.join(argv)} exited with status {rc}")
    return round(time.perf_counter() - t0, 3)


def _pixels(path: Path):
    from hdc_lightning.codec.imageio import read_image

    return (read_image(path) * 255).round().short()


def _diff(a: Path, b: Path) -> dict:
    pa, pb = _pixels(a), _pixels(b)
    if pa.shape != pb.shape:
        return {"same_shape": False}
    d = (pa - pb).abs()
    return {"max_abs": int(d.max()), "differing": round(float((d > 0).float().mean()), 6)}


def part_codec(spec: dict, result_path: str) -> dict:
    """For each checkpoint: encode on the CPU and on ``device``, decode across, compare."""
    dev, image, work = spec["device"], spec["image"], Path(spec["workdir"])
    work.mkdir(parents=True, exist_ok=True)
    for old in (*work.glob("*.hdc"), *work.glob("*.png")):  # the CLI would refuse to overwrite a rerun's images
        old.unlink()
    result: dict[str, Any] = {"device": dev, "image": image, "ckpts": sorted(spec["ckpts"])}
    for name, ckpt in spec["ckpts"].items():
        f = {k: work / f"{name}_{k}.hdc" for k in ("cpu", "dev")}
        png = {k: work / f"{name}_{k}.png" for k in ("cpu_on_cpu", "dev_on_cpu", "dev_on_dev")}
        times = {
            "compress_cpu": _cli("compress", image, "-o", str(f["cpu"]), "--ckpt", ckpt, "--device", "cpu"),
            "compress_dev": _cli("compress", image, "-o", str(f["dev"]), "--ckpt", ckpt, "--device", dev),
        }
        for key, (src, where) in {
            "cpu_on_cpu": ("cpu", "cpu"),
            "dev_on_cpu": ("dev", "cpu"),
            "dev_on_dev": ("dev", dev),
        }.items():
            times[f"decompress_{key}"] = _cli(
                "decompress", str(f[src]), "-o", str(png[key]), "--ckpt", ckpt, "--device", where
            )
        data = {k: p.read_bytes() for k, p in f.items()}
        result[name] = {
            "ckpt": ckpt,
            "bytes_cpu": len(data["cpu"]),
            "bytes_dev": len(data["dev"]),
            "same_bytes": data["cpu"] == data["dev"],
            "dev_file_on_cpu_vs_cpu_file_on_cpu": _diff(png["dev_on_cpu"], png["cpu_on_cpu"]),
            "dev_file_on_cpu_vs_on_dev": _diff(png["dev_on_cpu"], png["dev_on_dev"]),
            "wall_s": times,
        }
        _write(result_path, {**result, "partial": True})
    return result


def part_golden(spec: dict, result_path: str) -> dict:
    """The committed golden files decoded on the CPU, on ``device``, then on the CPU again:
    every discrete quantity must equal the pinned md5s (tests/codec/golden/expected.json)."""
    from hdc_lightning.codec import load_codec
    from hdc_lightning.evaluation.portability import decode_record

    golden = REPO / "tests" / "codec" / "golden"
    expected = json.loads((golden / "expected.json").read_text())
    result: dict[str, Any] = {"device": spec["device"]}
    for name, want in expected.items():
        data = (golden / f"{name}.hdc").read_bytes()
        rows = {}
        for i, dev in enumerate(("cpu", spec["device"], "cpu")):
            digests, _ = decode_record(load_codec(name, device=dev), data, f"{name}.hdc")
            rows[f"{i}:{dev}"] = sorted(k for k, v in want.items() if k != "model_id" and digests[k] != v)
        result[name] = {"mismatches": rows, "same": not any(rows.values())}
        _write(result_path, {**result, "partial": True})
    return result


PARTS = {"fit": part_fit, "codec": part_codec, "golden": part_golden}


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] not in PARTS:
        print(__doc__.strip().splitlines()[0] + " (nothing to run on its own: use benchmarks/gpu_check.py)")
        return 0  # `make bench` runs every script here; this one only serves gpu_check.py
    kind, spec_path, result_path = argv
    result = PARTS[kind](json.loads(Path(spec_path).read_text()), result_path)
    _write(result_path, result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
