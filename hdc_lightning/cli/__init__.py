"""``hdc``: a thin command line over the library (parse, call, report).

Each subcommand is a module here with ``add_parser(subparsers)`` and ``run(args) -> int``;
heavy imports happen inside ``run`` so ``hdc --help`` stays fast. Every
:class:`~hdc_lightning.errors.HDCError` is printed as one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Sequence

from hdc_lightning import __version__
from hdc_lightning.errors import HDCError

# Subcommand modules, in the order `hdc --help` lists them.
COMMANDS = (
    "fit",
    "pipeline",
    "compress",
    "decompress",
    "compare",
    "eval",
    "plot",
    "shards",
    "demo_data",
    "weights",
    "export",
    "import_weights",
)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows "(default: X)" only where it informs: not for flags, a None default, or a help
    text that already says its default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.nargs == 0 or action.default in (None, argparse.SUPPRESS) or "default" in text:
            return text
        return super()._get_help_string(action)


def quiet_third_party_warnings() -> None:
    """Libraries warn about their own deprecations while importing (compressai → torch_geometric
    → ``torch.jit.script``); a command's error must stay one ``error:`` line. Warnings the user
    asked for (``-W``, ``PYTHONWARNINGS``) and hdc_lightning's own are kept."""
    if not sys.warnoptions:
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"(?!hdc_lightning\b)")
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"(?!hdc_lightning\b)")


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
    for command in sub.choices.values():  # one formatter for every subcommand's help
        command.formatter_class = HelpFormatter
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    quiet_third_party_warnings()
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
