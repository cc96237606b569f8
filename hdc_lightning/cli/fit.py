"""``hdc fit CONFIG [key=value …]``: train one phase."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser(
        "fit",
        help="train one phase from a YAML config",
        description="Train one phase. Overrides are OmegaConf dotlist items, e.g. "
        "trainer.max_steps=100 data.train.batch_size=4 run.name=exp1 run.resume=true",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("config", help="YAML config (e.g. experiments/lic/tiny.yaml)")
    p.add_argument("overrides", nargs="*", help="key.path=value items applied last")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from hdc_lightning.config import load_config, to_yaml

    cfg = load_config(args.config, args.overrides)
    if args.print_config:
        print(to_yaml(cfg), end="")
        return 0
    from hdc_lightning.train import fit

    result = fit(cfg)
    print(f"run directory: {result.run_dir}  (step {result.global_step}, checkpoint {result.last_ckpt})")
    return 0
