"""Staged runs: the four phases in order, each stage trained once however many points use it.

A pipeline YAML (recipe) names its stages (a training config plus overrides each), which
earlier stages each one initialises from (weights only) and what it freezes, overrides for
every stage, and optionally a ladder of rate points (per-point overrides per stage); see
``experiments/pipeline/tiny-ladder.yaml`` and docs/pipeline.md.

A stage run is content-addressed: its identity is its resolved config plus the identities of
the stage runs it initialises from, so points, ablation variants or recipes under one root that
resolve to the same stage share one run, and a stage whose config changed is a new run::

    runs/shared/<stage>-<hash>/        the stage run (an ``hdc fit`` run directory)
    runs/shared/<stage>-<hash>.json    the identity it was hashed from
    runs/<name>/<point>/<stage>  ->  ../../shared/<stage>-<hash>    (no ladder: runs/<name>/<stage>)

Each stage runs as its own ``hdc fit`` process (so Lightning's DDP launcher, torchrun and
SLURM work per stage exactly as for a single phase). Rerunning after an interruption
skips finished stages (``done.json``) and resumes the interrupted one from ``last.ckpt``.
"""

from hdc_lightning.pipeline.identity import NOT_IN_IDENTITY, digest, stage_identity
from hdc_lightning.pipeline.plan import StagePlan, plan
from hdc_lightning.pipeline.run import run_pipeline
from hdc_lightning.pipeline.spec import (
    DONE_FILE,
    SET_BY_PIPELINE,
    SHARED,
    PipelineSpec,
    RatePoint,
    StageSpec,
    load_pipeline,
)

__all__ = [
    "DONE_FILE",
    "NOT_IN_IDENTITY",
    "SET_BY_PIPELINE",
    "SHARED",
    "PipelineSpec",
    "RatePoint",
    "StagePlan",
    "StageSpec",
    "digest",
    "load_pipeline",
    "plan",
    "run_pipeline",
    "stage_identity",
]
