"""Start-up cost of the inference path: import + ``load_codec`` + one encode/decode, in fresh processes.

Each round starts a new interpreter that imports ``hdc_lightning.codec``, loads a tiny
randomly initialised checkpoint (LIC or hybrid), encodes and decodes one 64x64 image, and
reports the seconds to import + load (wall clock and this process's CPU time, which a busy
machine disturbs less) and whether ``lightning`` was imported on the way. Prints medians.
To compare two trees, run it with ``PYTHONPATH=<other checkout>``.

    python benchmarks/codec_import.py [--model lic|hdc] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[1]))  # the repository root, for tests.helpers

CHILD = r"""
import json, sys, time
t0, c0 = time.perf_counter(), time.process_time()
import torch
t1, c1 = time.perf_counter(), time.process_time()
from hdc_lightning.codec import load_codec
codec = load_codec(sys.argv[1])
t2, c2 = time.perf_counter(), time.process_time()
x = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0))
codec.decode(codec.encode(x))
print(json.dumps({"torch_s": t1 - t0, "import_load_s": t2 - t1, "torch_cpu_s": c1 - c0, "import_load_cpu_s": c2 - c1,
                  "lightning": any(m.split(".")[0] in ("lightning", "pytorch_lightning") for m in sys.modules)}))
"""


def make_checkpoint(model: str, folder: Path) -> Path:
    from tests.helpers.models import random_init_checkpoint

    spec = {"name": model, "preset": "tiny", "args": {}}
    return random_init_checkpoint(folder / f"{model}.ckpt", spec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="lic", choices=["lic", "hdc"])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = make_checkpoint(args.model, Path(tmp))
        runs = []
        for _ in range(args.rounds):
            out = subprocess.run([sys.executable, "-c", CHILD, str(ckpt)], capture_output=True, text=True, check=True)
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0] if k != "lightning"}
    print(
        f"model {args.model}: import torch {med['torch_s']:.2f} s (CPU {med['torch_cpu_s']:.2f} s); "
        f"import hdc_lightning.codec + load_codec {med['import_load_s']:.2f} s (CPU {med['import_load_cpu_s']:.2f} s), "
        f"median of {args.rounds}; lightning imported: {runs[0]['lightning']}"
    )


if __name__ == "__main__":
    main()
