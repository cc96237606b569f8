"""The recipe: its schema, loading and validation (stages, overrides, ladder points)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from hdc_lightning.config.load import load_layers, validate
from hdc_lightning.errors import ConfigError, first_line
from hdc_lightning.fileio import check_component

DONE_FILE = "done.json"
SHARED = "shared"
STAGE_SECTIONS = ("run", "trainer", "data", "model", "phase")  # keys a pipeline-wide override may set
PIPELINE_KEYS = ("name", "root")
SET_BY_PIPELINE = ("run.name", "run.root", "run.resume", "run.overwrite", "run.init_from", "run.freeze")


@dataclass
class StageSpec:
    name: str = "???"
    config: str = "???"  # relative to the pipeline file
    overrides: list[str] = field(default_factory=list)
    # {phase module attribute: {stage: earlier stage name, prefix: key prefix in its checkpoint}};
    # instead of `stage`, `imported: DIR` names a stage directory `hdc import` wrote (relative to the file)
    init_from: dict[str, Any] = field(default_factory=dict)
    freeze: list[str] = field(default_factory=list)


@dataclass
class RatePoint:
    name: str = "???"
    overrides: dict[str, Any] = field(default_factory=dict)  # {stage name: [key=value, ...]}


@dataclass
class PipelineSpec:
    name: str = "???"
    root: str = "runs"
    overrides: list[str] = field(default_factory=list)  # every stage; its own overrides win
    stages: list[StageSpec] = field(default_factory=list)
    ladder: list[RatePoint] = field(default_factory=list)


def _split_overrides(items: list[str]) -> tuple[list[str], list[str]]:
    """CLI items → (pipeline keys such as root=..., overrides of every stage such as data.x=...)."""
    own, stages = [], []
    for item in items:
        key = item.split("=", 1)[0].strip()
        head = key.split(".", 1)[0]
        if "=" not in item or head not in PIPELINE_KEYS + STAGE_SECTIONS:
            raise ConfigError(
                f"pipeline override '{item}': expected {'|'.join(PIPELINE_KEYS)}=VALUE or "
                f"<{'|'.join(STAGE_SECTIONS)}>.KEY=VALUE (applied to every stage)"
            )
        (own if head in PIPELINE_KEYS else stages).append(item)
    return own, stages


def _check_stage_wide(items: list[str], where: str) -> None:
    for item in items:
        key = item.split("=", 1)[0].strip()
        if any(key == k or key.startswith(k + ".") for k in SET_BY_PIPELINE):
            raise ConfigError(f"{where}: '{key}' is set by the pipeline per stage (use root=... for the run folder)")


def _check_stage_kinds(raw: Any, path: Path) -> None:
    """Name the stage key that holds a list where a mapping belongs, or the reverse (OmegaConf's
    own error names neither)."""
    stages = raw.get("stages") if isinstance(raw, DictConfig) else None
    for k, st in enumerate(stages if isinstance(stages, ListConfig) else []):
        for key, kind, example in (
            ("init_from", DictConfig, "{ATTR: {stage: NAME, prefix: KEY_PREFIX}}"),
            ("overrides", ListConfig, "[key=value, ...]"),
            ("freeze", ListConfig, "[ATTR, ...]"),
        ):
            if isinstance(st, DictConfig) and st.get(key) is not None and not isinstance(st.get(key), kind):
                raise ConfigError(f"{path}: stages[{k}].{key} must be {example}")


def load_pipeline(path: str | Path, overrides: list[str] = ()) -> tuple[PipelineSpec, Path]:
    path = Path(path)
    raw = load_layers(path)
    _check_stage_kinds(raw, path)
    own, stage_wide = _split_overrides(list(overrides))
    if own:
        try:
            raw = OmegaConf.merge(raw, OmegaConf.from_dotlist(own))
        except (OmegaConfBaseException, yaml.YAMLError) as e:
            raise ConfigError(f"pipeline overrides: {e}") from None
    try:
        spec: PipelineSpec = OmegaConf.to_object(validate(raw, PipelineSpec, ""))
    except OmegaConfBaseException as e:
        raise ConfigError(f"{path}: {getattr(e, 'full_key', '')}: {first_line(e)}") from None
    spec.overrides = list(spec.overrides) + stage_wide  # the command line after the file
    _check_stage_wide(spec.overrides, f"{path}: overrides")
    check_component(spec.name, f"{path}: name")  # <root>/<name>/ is a folder: no '..', no '/'
    if spec.name == SHARED:
        raise ConfigError(f"{path}: pipeline name '{SHARED}' is reserved for the stage runs")
    if not spec.stages:
        raise ConfigError(f"{path}: 'stages' is empty")
    seen: list[str] = []
    for st in spec.stages:
        check_component(st.name, f"{path}: stages.name")
        if st.name in seen:
            raise ConfigError(f"{path}: stage name '{st.name}' appears twice")
        for attr, src in st.init_from.items():
            imported = isinstance(src, dict) and isinstance(src.get("imported"), str) and "stage" not in src
            if not imported and (not isinstance(src, dict) or src.get("stage") not in seen):
                raise ConfigError(
                    f"{path}: stages.{st.name}.init_from.{attr} must name an earlier stage "
                    f"({', '.join(seen) or 'none'}) or a directory `hdc import` wrote (imported: DIR)"
                )
        if not (path.parent / st.config).is_file():
            raise ConfigError(f"{path}: stages.{st.name}.config: {path.parent / st.config} not found")
        seen.append(st.name)
    names = [p.name for p in spec.ladder]
    for point in spec.ladder:
        check_component(point.name, f"{path}: ladder.name")
        for stage, items in point.overrides.items():
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise ConfigError(
                    f"{path}: ladder.{point.name}.overrides.{stage} must be a list of key=value strings, got {items!r}"
                )
        unknown = set(point.overrides) - set(seen)
        if unknown:
            raise ConfigError(
                f"{path}: ladder.{point.name}.overrides names unknown stages: {', '.join(sorted(unknown))}"
            )
        if names.count(point.name) > 1:
            raise ConfigError(f"{path}: ladder point name '{point.name}' appears twice")
    return spec, path
