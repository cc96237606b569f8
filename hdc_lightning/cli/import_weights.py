"""``hdc import KIND FILE -o STAGE_DIR``: published weights as a stage of ours (docs/pretrained.md)."""

from __future__ import annotations

import argparse

from hdc_lightning.cli.common import add_force

KINDS = ("taming-vqgan", "llamagen-vq", "mlicpp")  # hdc_lightning.importers.FAMILIES (kept light for --help)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "import",
        help="turn a downloaded checkpoint (taming-transformers or LlamaGen VQGAN, MLIC++) into a stage directory",
        description="Read FILE without running any of its code, map its keys onto our model, load them "
        "strictly and write STAGE_DIR/checkpoints/last.ckpt (for a recipe's init_from and hdc eval) and "
        "STAGE_DIR/import.json (source sha256, mapping version). See docs/pretrained.md for the files.",
    )
    p.add_argument("kind", choices=KINDS, help="which project's file FILE is")
    p.add_argument("file", help="the downloaded checkpoint")
    p.add_argument("-o", "--out", required=True, metavar="STAGE_DIR", help="stage directory to write")
    add_force(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from hdc_lightning.importers import import_file

    m = import_file(args.kind, args.file, args.out, args.force)
    spec = m["model"]
    if "codebook_size" in m:
        what = f"K={m['codebook_size']}, code dim {m['code_dim']}, full index map {m['bpp_full_index_map']} bpp"
    else:
        what = f"N={m['N']}, M={m['M']}, {m['slices']} slices"
    print(
        f"{args.out}: {m['kind']} -> {spec['name']}/{spec['preset'] or 'custom'}, {what}; "
        f"init_from: {{ckpt: {m['init_from']['ckpt']}, prefix: {m['init_from']['prefix']}}}"
    )
    return 0
