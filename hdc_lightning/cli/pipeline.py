"""``hdc pipeline CONFIG``: run the staged recipe (LIC → VQ → DRV → fusion), resumably."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser(
        "pipeline",
        help="run the four training phases in order (rerun to resume)",
        description="Run every stage of a pipeline config in order. A stage that several rate points "
        "resolve to identically is trained once, in runs/<name>/shared/<stage>-<hash>/, and each point's "
        "runs/<name>/[<point>/]<stage> links to it. Finished stages are skipped; an interrupted stage "
        "resumes from its last.ckpt.",
    )
    p.add_argument("config", help="pipeline YAML (e.g. experiments/pipeline/tiny.yaml)")
    p.add_argument(
        "overrides",
        nargs="*",
        help="root=DIR or name=NAME for the pipeline; data.*, trainer.*, model.*, phase.*, run.* "
        "for every stage (a stage's own overrides in the recipe win)",
    )
    p.add_argument("--point", action="append", help="run only this rate point of the ladder (repeatable)")
    p.add_argument("--dry-run", action="store_true", help="print the plan (stage runs, status, points) and exit")
    p.add_argument("--commands", action="store_true", help="with --dry-run: also each stage's hdc fit command")
    p.set_defaults(run=run)


def print_plan(spec, plans, source: str, commands: bool = False, out=print) -> None:
    """The plan as a graph: each stage run, the runs it starts from, its status, its points."""
    import shlex

    points = list(dict.fromkeys(pt for p in plans for pt in p.points))  # the selected ones ("" without a ladder)
    uses = sum(len(p.links) for p in plans)
    out(f"pipeline {spec.name} ({source}): {len(plans)} stage runs for {uses} point-stages, under {plans[0].run_root}/")
    width = max(len(p.key) for p in plans) + 2
    src_w = max([len(" ".join(s.key for s, _ in p.sources.values())) for p in plans] + [4]) + 2
    out((f"  {'stage run':<{width}}{'status':<11}{'from':<{src_w}}" + ("points" if points != [""] else "")).rstrip())
    statuses = [p.status() for p in plans]
    for p, status in zip(plans, statuses):
        src = " ".join(s.key for s, _ in p.sources.values()) or "-"
        out(f"  {p.key:<{width}}{status:<11}{src:<{src_w}}{' '.join(p.points)}".rstrip())
        for point in p.points:
            old = p.replaced(point)
            if old:
                what = f" (changed: {', '.join(old[1][:4])}{', ...' if len(old[1]) > 4 else ''})" if old[1] else ""
                out(f"      {p.links[point]} now leads here instead of {old[0]}{what}")
        if commands:
            out(f"      {shlex.join(p.command())}")
    counts = {
        s: statuses.count(s) for s in ("done", "running", "resumable", "to do") if s != "running" or s in statuses
    }
    out(
        f"{len(plans)} stage runs: "
        + ", ".join(f"{n} {s}" for s, n in counts.items())
        + f" ({uses} without sharing: {len(points)} point{'s' * (len(points) > 1)} × {len(spec.stages)} stages)"
    )


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hdc_lightning.pipeline import load_pipeline, plan, run_pipeline

    spec, path = load_pipeline(args.config, args.overrides)
    if args.dry_run:
        print_plan(spec, plan(spec, path, args.point), args.config, args.commands)
        return 0
    plans = run_pipeline(spec, path, args.point)
    uses = sum(len(p.links) for p in plans)
    print(
        f"pipeline '{spec.name}': {len(plans)} stage runs complete ({uses} point-stages) under "
        f"{Path(spec.root) / spec.name}"
    )
    return 0
