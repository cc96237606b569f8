"""``hdc export CKPT -o OUT.pt [--half]``: a weights-only file that ``load_codec`` and the CLI accept."""

from __future__ import annotations

import argparse
from pathlib import Path

from hdc_lightning.cli.common import add_force


def add_parser(sub) -> None:
    p = sub.add_parser(
        "export",
        help="write a weights-only copy of a training checkpoint (no optimizer state; optional float16)",
        description="Load CKPT as a codec (which checks it), then write the model's weights and its model spec "
        "only, loadable with torch.load(weights_only=True). --half stores float tensors as float16.",
    )
    p.add_argument("ckpt", help="checkpoint written by `hdc fit`")
    p.add_argument("-o", "--out", required=True, help="output file (.pt)")
    p.add_argument("--half", action="store_true", help="store float tensors as float16 (half the size)")
    add_force(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from hdc_lightning.checkpoints import checkpoint_config, safe_load
    from hdc_lightning.codec.api import export_checkpoint, load_codec
    from hdc_lightning.errors import ConfigError
    from hdc_lightning.fileio import check_output
    from hdc_lightning.pretrained import is_pretrained, weights_path

    if is_pretrained(args.ckpt) and not Path(args.ckpt).exists():
        raise ConfigError(
            f"{args.ckpt}: a shipped model, exported already ({weights_path(args.ckpt)}); "
            "`hdc export` takes a checkpoint written by `hdc fit`"
        )
    out = check_output(args.out, [args.ckpt], args.force)
    codec = load_codec(args.ckpt)
    spec = dict(checkpoint_config(safe_load(args.ckpt), args.ckpt)["model"])
    export_checkpoint(codec.model, spec, str(out), half=args.half)
    check = load_codec(str(out))
    print(f"{out}: {out.stat().st_size / 2**20:.1f} MiB, model {check.model_id}")
    return 0
