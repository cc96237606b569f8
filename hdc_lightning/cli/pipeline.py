"""``hdc pipeline CONFIG``: run the staged recipe (LIC → VQ → DRV → fusion), resumably."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser(
        "pipeline",
        help="run the four training phases in order (rerun to resume)",
        description="Run every stage of a pipeline config in order, each in runs/<name>/[<point>/]<stage>/. "
        "Finished stages are skipped; an interrupted stage resumes from its last.ckpt.",
    )
    p.add_argument("config", help="pipeline YAML (e.g. experiments/pipeline/tiny.yaml)")
    p.add_argument("overrides", nargs="*", help="pipeline-level key=value items (e.g. root=/scratch/runs)")
    p.add_argument("--point", action="append", help="run only this rate point of the ladder (repeatable)")
    p.add_argument("--dry-run", action="store_true", help="print the stage commands and exit")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import shlex

    from hdc_lightning.pipeline import load_pipeline, plan, run_pipeline

    spec, path = load_pipeline(args.config, args.overrides)
    if args.dry_run:
        for p in plan(spec, path, args.point):
            state = "done" if p.done() else "todo"
            print(f"# {p.run_root}/{p.stage.name} [{state}]\n{shlex.join(p.command())}")
        return 0
    plans = run_pipeline(spec, path, args.point)
    print(f"pipeline '{spec.name}': {len(plans)} stage runs complete under {plans[0].run_root.parent if spec.ladder else plans[0].run_root}")
    return 0
