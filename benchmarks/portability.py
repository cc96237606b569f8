"""Code a folder under each torch kernel set, decode every file under every other: the matrix.

One worker process per kernel set (``ATEN_CPU_CAPABILITY`` × ``ONEDNN_MAX_CPU_ISA``, see
:mod:`hdc_lightning.evaluation.portability`). For each model and each (encoder set, decoder
set) it prints which discrete quantities differ (must be none: the LIC latent, the sent
mask and indices, T's completed index map) and, per output, the largest share of pixels
that differ from the encoder machine's own decode and the largest difference in 8-bit levels.

    python benchmarks/portability.py --data ~/kodak --models small-lic,small -o results/portability
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hdc_lightning.data.images import list_images
from hdc_lightning.errors import HDCError
from hdc_lightning.evaluation.portability import PIXELS, compare, kernel_sets, label, run_matrix


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="folder of images")
    p.add_argument("--models", default="small-lic,small", help="comma-separated shipped models or checkpoints")
    p.add_argument("--limit", type=int, default=0, help="first N images only (0: all)")
    p.add_argument("--sets", default="", help="comma-separated CAP/ISA labels (default: every set this CPU has)")
    p.add_argument("-o", "--out", default="results/portability", help="working folder (resumes)")
    a = p.parse_args(argv)
    try:
        images = [str(f) for f in list_images(a.data)[: a.limit or None]]
    except HDCError as e:
        print(f"portability: error: {e}", file=sys.stderr)
        return 2
    sets = kernel_sets()
    if a.sets:
        wanted = a.sets.split(",")
        unknown = sorted(set(wanted) - {label(s) for s in sets})
        if unknown:
            print(f"portability: error: --sets {','.join(unknown)}: not a kernel set of this CPU", file=sys.stderr)
            return 2
        sets = [s for s in sets if label(s) in wanted]
    for model in a.models.split(","):
        root = Path(a.out) / model.replace("/", "_")
        try:
            matrix = run_matrix(model, images, root, sets)
        except RuntimeError as e:
            print(f"portability: error: {e}", file=sys.stderr)
            return 1
        cells = compare(matrix, root)
        print(f"\n{model}: {len(images)} images, decoded at 1 and 2 threads; rows encode, columns decode")
        labels = matrix["sets"]
        print("discrete mismatches " + " | ".join(labels))
        for enc in labels:
            print(f"{enc:>14} " + " | ".join(",".join(cells[(enc, d)]["discrete"]) or "same" for d in labels))
        for out in PIXELS:
            if not any(out in c["pixels"] for c in cells.values()):
                continue
            print(f"{out}: share of pixels differing / largest difference (8-bit levels)")
            for enc in labels:
                row = [cells[(enc, d)]["pixels"][out] for d in labels]
                print(f"{enc:>14} " + " | ".join(f"{100 * s:.4f} % / {m}" for s, m in row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
