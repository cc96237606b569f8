"""``hdc plot RESULTS.json… -o FIG.png``: RD/RP curves from results JSONs."""

from __future__ import annotations

import argparse

from hdc_lightning.cli.common import add_force

METRIC_CHOICES = ("psnr-rgb", "ms-ssim-rgb", "ms-ssim-db-rgb", "lpips", "dists", "fid", "kid")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "plot",
        help="draw rate-distortion / rate-perception curves from results JSONs",
        description="Draw bpp-vs-metric curves from CompressAI-schema results JSONs (as written by `hdc eval`). "
        "A folder stands for the results JSONs inside it. Default panels: PSNR and LPIPS "
        "(MS-SSIM when no curve has LPIPS).",
    )
    p.add_argument("results", nargs="+", help="results JSON files or folders")
    p.add_argument("-o", "--output", required=True, help="figure file, its type from the suffix: .png, .pdf or .svg")
    p.add_argument(
        "--metric",
        action="append",
        choices=METRIC_CHOICES,
        help="a panel to draw (repeat for several); default: psnr-rgb + lpips or ms-ssim-rgb",
    )
    p.add_argument("--title", help="figure title")
    add_force(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from hdc_lightning.evaluation.plot import figure_path, plot_files
    from hdc_lightning.evaluation.results import expand_paths
    from hdc_lightning.fileio import check_output

    check_output(figure_path(args.output), expand_paths(args.results), args.force)
    path = plot_files(args.results, args.output, args.metric, args.title)
    print(f"wrote {path}")
    return 0
