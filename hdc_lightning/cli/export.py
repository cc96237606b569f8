"""``hdc export CKPT -o OUT.pt [--half] [--mask LEVEL] [--anchor-sigma S]``: a weights-only file that
``load_codec`` and the CLI accept; the two options set parameter-free settings of a hybrid's spec."""

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
    p.add_argument(
        "--mask",
        metavar="LEVEL",
        default=None,
        help="hybrid (hdc) checkpoints: the mask policy the exported codec encodes with by default, auto | full | "
        "1/4 | 1/9 | none (an encoder setting written into the model spec: no weight changes, but the model "
        "id does; default: the checkpoint's own)",
    )
    p.add_argument(
        "--anchor-sigma",
        metavar="S",
        type=float,
        default=None,
        help="hybrid (hdc) checkpoints with the perceptual decoder: x̃ takes x̂_lic's content below a Gaussian of S "
        "pixels (0: off; docs/models.md#the-perceptual-decoder-the-fidelity-stream-at-every-scale); written into "
        "the model spec like --mask",
    )
    add_force(p)
    p.set_defaults(run=run)


def with_part_args(spec: dict, part: str, values: dict, flag: str, source: str) -> dict:
    """``spec`` with ``values`` set in ``model.args.parts.<part>.args`` (a hybrid's part settings)."""
    from hdc_lightning.errors import ConfigError

    if spec.get("name") != "hdc":
        raise ConfigError(f"{source}: {flag} applies to hybrid (hdc) checkpoints, this one holds {spec.get('name')}")
    args = dict(spec.get("args") or {})
    parts = dict(args.get("parts") or {})
    entry = parts.get(part)
    entry = {"preset": entry} if isinstance(entry, str) else dict(entry or {})
    entry["args"] = {**dict(entry.get("args") or {}), **values}
    parts[part] = entry
    return {**spec, "args": {**args, "parts": parts}}


def run(args: argparse.Namespace) -> int:
    from hdc_lightning.checkpoints import checkpoint_config, safe_load
    from hdc_lightning.cli.common import check_mask
    from hdc_lightning.codec.api import export_checkpoint, load_codec
    from hdc_lightning.errors import ConfigError
    from hdc_lightning.fileio import check_output
    from hdc_lightning.models.fusion.perceptual import MAX_ANCHOR_SIGMA
    from hdc_lightning.pretrained import is_pretrained, weights_path

    if is_pretrained(args.ckpt) and not Path(args.ckpt).exists():
        raise ConfigError(
            f"{args.ckpt}: a shipped model, exported already ({weights_path(args.ckpt)}); "
            "`hdc export` takes a checkpoint written by `hdc fit`"
        )
    check_mask(args.mask)
    if args.anchor_sigma is not None and not 0 <= args.anchor_sigma <= MAX_ANCHOR_SIGMA:
        raise ConfigError(f"--anchor-sigma {args.anchor_sigma:g}: give 0 (off) to {MAX_ANCHOR_SIGMA:g} pixels")
    out = check_output(args.out, [args.ckpt], args.force)
    codec = load_codec(args.ckpt)
    spec = dict(checkpoint_config(safe_load(args.ckpt), args.ckpt)["model"])
    if args.mask is not None:
        spec = with_part_args(spec, "masks", {"mode": args.mask}, "--mask", args.ckpt)
    if args.anchor_sigma is not None:
        if getattr(codec.model, "perceptual", None) is None:
            raise ConfigError(
                f"{args.ckpt}: --anchor-sigma needs a hybrid with the perceptual decoder (perceptual=inject)"
            )
        spec = with_part_args(spec, "perceptual", {"anchor_sigma": args.anchor_sigma}, "--anchor-sigma", args.ckpt)
    export_checkpoint(codec.model, spec, str(out), half=args.half)
    check = load_codec(str(out))
    settings = ""
    if hasattr(check, "mask"):
        settings = f", mask policy {check.mask}"
    if getattr(check.model, "perceptual", None) is not None:
        settings += f", anchor σ {check.model.perceptual.anchor_sigma:g} px"
    print(f"{out}: {out.stat().st_size / 2**20:.1f} MiB, model {check.model_id}{settings}")
    return 0
