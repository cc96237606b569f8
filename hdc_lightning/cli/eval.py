"""``hdc eval CKPT… --data FOLDER -o OUTDIR``: real-bitstream evaluation of a rate ladder."""

from __future__ import annotations

import argparse


def _baselines(text: str) -> list[str]:
    return [] if text.strip().lower() in ("", "none") else [t.strip().lower() for t in text.split(",") if t.strip()]


def add_parser(sub) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate checkpoints on an image folder with real compress/decompress",
        description="Encode every image of FOLDER to bytes and decode it with each checkpoint (one rate point "
        "each; a run directory stands for its last.ckpt, a ladder folder for all its runs). Writes per-image "
        "and aggregate results JSONs (CompressAI schema), classical baselines at matching rates, BD-rate/"
        "BD-PSNR against --anchor, and an RD/RP figure.",
    )
    p.add_argument("checkpoints", nargs="*", metavar="CKPT", help="checkpoint files, run directories or ladder folders")
    p.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME",
        help="a shipped model (e.g. small) as one more rate point; repeatable",
    )
    p.add_argument("--data", required=True, help="image folder (Kodak, Tecnick, CLIC layouts; searched recursively)")
    p.add_argument("-o", "--output", required=True, help="output folder for the JSONs and the figure")
    p.add_argument("--name", default="hdc", help="name of the learned curve (default: hdc)")
    p.add_argument("--anchor", help="curve for BD-rate/BD-PSNR: --name, a baseline name, or a results JSON")
    p.add_argument(
        "--baselines",
        default=None,
        help="comma list of classical codecs at matching rates (jpeg,webp,avif) or 'none'; "
        "default: every one this Pillow supports",
    )
    p.add_argument(
        "--tile",
        type=int,
        default=None,
        help="code in tiles of at most N×N pixels, one file per image (0: never; 64..2048); default: one "
        "piece up to the format's 4.2 Mpx, tiles of 1024 beyond (docs/format.md#tiled-files)",
    )
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N images")
    p.add_argument("--no-lpips", action="store_true", help="skip LPIPS")
    p.add_argument("--no-dists", action="store_true", help="skip DISTS")
    p.add_argument(
        "--no-ms-ssim", action="store_true", help="skip MS-SSIM (its memory grows with the whole image, not the tile)"
    )
    p.add_argument("--no-fid", action="store_true", help="skip FID/KID (Inception) on 256-px patches")
    p.add_argument(
        "--no-kid-vgg16",
        action="store_true",
        help="skip kid-vgg16, the offline KID on VGG16-trunk features of the same patches (not the published KID)",
    )
    p.add_argument("--device", default="cpu", help="device of the codec's transforms, e.g. cuda (default: cpu)")
    p.add_argument("--metrics-device", default="cpu", help="device of the LPIPS/DISTS/FID networks (default: cpu)")
    p.add_argument("--no-progress", action="store_true", help="no per-image progress bar")
    p.add_argument(
        "--target-bpp",
        metavar="R,R,...",
        default=None,
        help="one curve from these rates: each image coded at the best file of at most R bpp among "
        "the mask levels and the CKPTs given (docs/operating-point.md)",
    )
    p.add_argument(
        "--realism",
        metavar="A,A,...",
        default=None,
        help="the perception-distortion curve of one CKPT: one point per decode realism A in [0, 1]",
    )
    p.add_argument(
        "--realism-mode",
        default=None,
        choices=("learned", "blend"),
        help="with --realism: the realism-conditioned decoder at each A (default when the model has one) "
        "or the pixel mix of x̂_lic and x̃",
    )
    p.add_argument(
        "--mask",
        default=None,
        metavar="MODE",
        help="hybrid (hdc) checkpoints: which VQ indices are sent, auto | full | 1/4 | 1/9 | none "
        "(default: each model's mask policy)",
    )
    p.set_defaults(run=run)


def _check_outputs(args: argparse.Namespace, baselines: list[str]) -> None:
    """OUTDIR must be a folder, and no file this evaluation writes may be its --anchor input."""
    from pathlib import Path

    from hdc_lightning.errors import ConfigError
    from hdc_lightning.evaluation.runner import BD_NAME, check_curve_name

    check_curve_name(args.name)
    outdir = Path(args.output)
    if outdir.exists() and not outdir.is_dir():
        raise ConfigError(f"-o {outdir}: is a file; give a folder for the results")
    if args.anchor and Path(args.anchor).is_file():
        writes = {(outdir / f"{n}.json").resolve() for n in (args.name, *baselines, BD_NAME)}
        if Path(args.anchor).resolve() in writes:
            raise ConfigError(
                f"--anchor {args.anchor}: this evaluation writes that very file; "
                "copy the anchor elsewhere or choose another -o folder"
            )


def _bd_lines(bd: dict) -> list[str]:
    lines = []
    for name, row in bd.get("curves", {}).items():
        figures = [
            f"{k}={v:+.3f} (overlap {row.get(f'{k}.overlap', 0):.0%})"
            for k, v in row.items()
            if isinstance(v, float) and "." not in k
        ]
        lines.append(f"BD vs {bd['anchor']}: {name}: {', '.join(figures) or 'n/a'}")
        lines += [f"  {k}: {v}" for k, v in row.items() if k.startswith("error[")]
    return lines


def _operating_points(args: argparse.Namespace) -> dict:
    """``--target-bpp`` / ``--realism`` lists as EvalOptions fields (one-line errors for bad values)."""
    from hdc_lightning.codec.hybrid import check_realism
    from hdc_lightning.codec.rate_control import parse_targets
    from hdc_lightning.errors import ConfigError

    if args.target_bpp is not None and args.realism is not None:
        raise ConfigError("--target-bpp and --realism make different curves; give one of them")
    if args.target_bpp is not None:
        if args.mask is not None:
            raise ConfigError("--target-bpp chooses the mask level per image itself; drop --mask")
        return {"target_bpp": parse_targets(args.target_bpp)}
    if args.realism is not None:
        return {
            "realism": [check_realism(a, "--realism") for a in args.realism.split(",")],
            "realism_mode": args.realism_mode,
        }
    if args.realism_mode is not None:
        raise ConfigError("--realism-mode applies to a --realism curve; give --realism too")
    return {}


def run(args: argparse.Namespace) -> int:
    from hdc_lightning.cli.common import check_device, check_mask
    from hdc_lightning.codec.tiles import check_tile
    from hdc_lightning.errors import ConfigError
    from hdc_lightning.evaluation import classical
    from hdc_lightning.evaluation.runner import EvalOptions, run_eval

    baselines = classical.supported() if args.baselines is None else _baselines(args.baselines)
    check_tile(args.tile, flag="--tile")
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit must be at least 1 image, got {args.limit}")
    check_device(args.device, "--device")
    check_device(args.metrics_device, "--metrics-device")
    _check_outputs(args, baselines)
    sweep = _operating_points(args)
    check_mask(args.mask)
    opts = EvalOptions(
        tile=args.tile,
        baselines=baselines,
        lpips=not args.no_lpips,
        dists=not args.no_dists,
        ms_ssim=not args.no_ms_ssim,
        fid=not args.no_fid,
        kid_vgg16=not args.no_kid_vgg16,
        limit=args.limit,
        progress=not args.no_progress,
        device=args.metrics_device,
        codec_device=args.device,
        mask=args.mask,
        **sweep,
    )
    from hdc_lightning import pretrained

    points = [*args.checkpoints, *(str(pretrained.weights_path(m)) for m in args.model)]
    if not points:
        raise ConfigError("nothing to evaluate: give checkpoints (CKPT ...) or --model NAME")
    summary = run_eval(points, args.data, args.output, name=args.name, anchor=args.anchor, opts=opts)
    for curve in summary.curves:
        r = curve.results
        cols = [
            f"{k}={' '.join(f'{v:.4g}' for v in r[k])}"
            for k in ("bpp", "psnr-rgb", "ms-ssim-rgb", "lpips", "dists")
            if k in r
        ]
        print(f"{curve.name:>8}: " + "  ".join(cols))
    for line in _bd_lines(summary.bd):
        print(line)
    if summary.skipped:
        print(
            f"skipped {len(summary.skipped)} image(s): "
            + "; ".join(f"{s['name']} ({s['reason']})" for s in summary.skipped)
        )
    print(f"peak memory (RSS): {summary.peak_rss_mib:.0f} MiB; wrote {len(summary.files)} files under {args.output}")
    return 0
