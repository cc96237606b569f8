"""``hdc``: a thin command line over the library (parse, call, report).

Each subcommand is a module here with ``add_parser(subparsers)`` and ``run(args) -> int``;
heavy imports happen inside ``run`` so ``hdc --help`` stays fast. Every
:class:`~hdc_lightning.errors.HDCError` is printed as one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from hdc_lightning import __version__
from hdc_lightning.errors import HDCError

# Subcommand modules, in the order `hdc --help` lists them.
COMMANDS = ("fit", "pipeline", "compress", "decompress", "eval", "plot", "shards", "demo_data", "weights")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hdc", description="HDCompression experiments: train phases, code images, evaluate."
    )
    parser.add_argument("--version", action="version", version=f"hdc_lightning {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"hdc_lightning.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"hdc_lightning.cli.{name}":
                continue  # subcommand not part of this build
            raise
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except HDCError as e:
        print(f"hdc {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hdc {args.command}: interrupted", file=sys.stderr)
        return 130
