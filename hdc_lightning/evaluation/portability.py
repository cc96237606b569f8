"""Does a file decode to the same thing on every machine? Encode and decode under each kernel set.

Torch picks its CPU kernels at start-up (``ATEN_CPU_CAPABILITY``: default / avx2 / avx512;
oneDNN's convolutions: ``ONEDNN_MAX_CPU_ISA``), and another CPU computes other last bits.
This module runs one worker process per kernel set (both thread counts inside it): each
encodes the images into its own folder and decodes every file of every folder, reporting
per file what the decoder got:

- discrete quantities, which must be identical everywhere: the LIC's decoded latent
  (``y_hat``: symbols + means), and for the hybrid the sent mask, the sent indices and T's
  completed index map ``d_hat``;
- the 8-bit outputs (``fidelity``, ``perceptual``): identical is the goal; where they are
  not, :func:`compare` gives the share of pixels that differ and the largest difference.

``python benchmarks/portability.py`` prints the matrix on a folder; the test suite runs it
on one small image (tests/codec/test_portability.py).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

DISCRETE = ("y_hat", "sent", "sent_indices", "d_hat")
PIXELS = ("fidelity", "perceptual")
THREADS = (1, 2)


def machine_capabilities() -> list[str]:
    """``ATEN_CPU_CAPABILITY`` values this CPU can run, generic first (x86-64 names)."""
    flags = Path("/proc/cpuinfo").read_text().split() if Path("/proc/cpuinfo").exists() else []
    caps = ["default"]
    if "avx2" in flags:
        caps.append("avx2")
    if "avx512f" in flags and "avx512bw" in flags and "avx512vl" in flags and "avx512dq" in flags:
        caps.append("avx512")
    return caps


def kernel_sets(onednn: tuple[str, ...] = ("SSE41", "AVX2", "ALL")) -> list[dict[str, str]]:
    """Every (ATen capability × oneDNN ISA ceiling) this machine can be forced into."""
    return [
        {"ATEN_CPU_CAPABILITY": cap, "ONEDNN_MAX_CPU_ISA": isa}
        for cap, isa in itertools.product(machine_capabilities(), onednn)
    ]


def label(env: dict[str, str]) -> str:
    return f"{env['ATEN_CPU_CAPABILITY']}/{env['ONEDNN_MAX_CPU_ISA']}"


# ---- the worker: runs inside one kernel set ----------------------------------------------------
def _digest(a: np.ndarray) -> str:
    return hashlib.md5(np.ascontiguousarray(a).tobytes()).hexdigest()


def decode_record(codec, data: bytes, source: str) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    """What one decode of ``data`` yields: md5 per quantity, and the 8-bit outputs."""
    from hdc_lightning.codec import check_model_id, unpack
    from hdc_lightning.codec.imageio import to_uint8

    if codec.name in ("lic", "mlicpp"):
        container = unpack(data, codec.limits, source)
        header = container.header
        check_model_id(header, codec, source)
        out = codec.model.decompress([[s] for s in container.streams], (header.height, header.width))
        discrete = {"y_hat": out.y_hat.numpy()}
        pixels = {"fidelity": to_uint8(out.x_hat[0])}
    else:
        _, out = codec.decode_full(data, source=source, output="both")
        sent = out.sent.cpu().numpy()
        d_hat = out.d_hat[0].cpu().numpy()
        discrete = {"y_hat": out.y_hat.numpy(), "sent": sent, "sent_indices": d_hat[sent], "d_hat": d_hat}
        pixels = {
            "fidelity": to_uint8(out.x_hat_lic[0]),
            "perceptual": to_uint8(out.x_tilde[0]),
        }
    return {k: _digest(v) for k, v in {**discrete, **pixels}.items()}, pixels


def worker(model: str, images: list[str], root: Path, name: str, folders: list[Path]) -> dict:
    """Encode ``images`` into ``root/name`` (2 threads), then decode every ``.hdc`` under ``folders``
    at each thread count; writes the 8-bit outputs beside a JSON report."""
    import torch

    from hdc_lightning.codec import load_codec
    from hdc_lightning.codec.imageio import read_image

    codec = load_codec(model)
    mine = root / name
    mine.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)
    for img in images:
        (mine / f"{Path(img).stem}.hdc").write_bytes(codec.encode(read_image(img)))
    report = {"capability": torch.backends.cpu.get_cpu_capability(), "decoded": {}}
    for threads in THREADS:
        torch.set_num_threads(threads)
        for folder in folders:
            for f in sorted(Path(folder).glob("*.hdc")):
                digests, pixels = decode_record(codec, f.read_bytes(), str(f))
                key = f"{folder.name}:{f.stem}:t{threads}"
                report["decoded"][key] = digests
                for out, arr in pixels.items():
                    np.save(mine / f"dec-{folder.name}-{f.stem}-t{threads}-{out}.npy", arr)
    return report


def _main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="portability worker (one kernel set; run by run_matrix)")
    p.add_argument("--model", required=True)
    p.add_argument("--root", required=True, type=Path)
    p.add_argument("--name", required=True)
    p.add_argument("--phase", choices=("encode", "decode"), required=True)
    p.add_argument("--folders", nargs="*", default=[])
    p.add_argument("images", nargs="*")
    a = p.parse_args(argv)
    folders = [Path(f) for f in a.folders] if a.phase == "decode" else []
    images = a.images if a.phase == "encode" else []
    report = worker(a.model, images, a.root, a.name, folders)
    (a.root / a.name / f"{a.phase}.json").write_text(json.dumps(report))
    return 0


# ---- the driver -------------------------------------------------------------------------------
def _run(env_set: dict[str, str], args: list[str], timeout: float) -> None:
    env = {**os.environ, **env_set, "OMP_NUM_THREADS": "2", "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "hdc_lightning.evaluation.portability", *args]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        tail = (r.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"portability worker under {label(env_set)} failed: {tail}")


def run_matrix(
    model: str,
    images: list[str],
    root: Path,
    sets: list[dict[str, str]],
    encoders: list[dict[str, str]] | None = None,
    timeout: float = 3600,
) -> dict:
    """Encode under every kernel set of ``encoders`` (default: ``sets``), then decode every file
    under every kernel set of ``sets`` at each thread count.

    Returns ``{"sets": [labels], "capabilities": {...}, "decoded": {decoder label: {file key: digests}}}``
    where a file key is ``<encoder label>:<image>:t<threads>``.
    """
    root = Path(root)
    encoders = sets if encoders is None else encoders
    if any(e not in sets for e in encoders):
        raise ValueError("every encoder kernel set must also decode (its own decode is the reference)")
    names = [label(s).replace("/", "-") for s in sets]
    enc_names = [label(s).replace("/", "-") for s in encoders]
    # A worker whose report exists is not run again: an interrupted matrix resumes.
    for s, n in zip(encoders, enc_names):
        if not (root / n / "encode.json").exists():
            _run(s, ["--model", model, "--root", str(root), "--name", n, "--phase", "encode", *images], timeout)
    folders = [str(root / n) for n in enc_names]
    out = {
        "sets": [label(s) for s in sets],
        "encoders": [label(s) for s in encoders],
        "capabilities": {},
        "decoded": {},
    }
    for s, n in zip(sets, names):
        if not (root / n / "decode.json").exists():
            _run(
                s,
                ["--model", model, "--root", str(root), "--name", n, "--phase", "decode", "--folders", *folders],
                timeout,
            )
        report = json.loads((root / n / "decode.json").read_text())
        out["capabilities"][label(s)] = report["capability"]
        out["decoded"][label(s)] = report["decoded"]
    out["dirs"] = {label(s): label(s).replace("/", "-") for s in [*sets, *encoders]}
    return out


def compare(matrix: dict, root: Path) -> dict:
    """Per (encoder set, decoder set): discrete mismatches, and pixel differences against the
    encoder's own decode at 2 threads (``{"discrete": [names], "pixels": {out: (share, max)}}``)."""
    root = Path(root)
    result = {}
    for enc in matrix["encoders"]:
        enc_dir = matrix["dirs"][enc]
        ref = matrix["decoded"][enc]  # the encoder's own decode is the reference
        for dec in matrix["sets"]:
            cell = {"discrete": set(), "pixels": {}}
            for key, digests in matrix["decoded"][dec].items():
                folder, stem, threads = key.split(":")
                if folder != enc_dir:
                    continue
                want = ref[f"{folder}:{stem}:t2"]
                cell["discrete"] |= {q for q in DISCRETE if q in digests and digests[q] != want[q]}
                for out in PIXELS:
                    if out not in digests:
                        continue
                    a = np.load(root / matrix["dirs"][dec] / f"dec-{folder}-{stem}-{threads}-{out}.npy").astype(
                        np.int16
                    )
                    b = np.load(root / enc_dir / f"dec-{folder}-{stem}-t2-{out}.npy").astype(np.int16)
                    share, big = cell["pixels"].get(out, (0.0, 0))
                    diff = np.abs(a - b)
                    cell["pixels"][out] = (max(share, float((diff > 0).mean())), max(big, int(diff.max())))
            cell["discrete"] = sorted(cell["discrete"])
            result[(enc, dec)] = cell
    return result


if __name__ == "__main__":
    sys.exit(_main())
