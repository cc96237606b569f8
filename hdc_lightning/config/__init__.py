"""Typed, layered configuration (OmegaConf + dataclasses)."""

from hdc_lightning.config.load import load_config, load_layers, parse_overrides, to_yaml, validate
from hdc_lightning.config.schema import ComponentSpec, Config, PhaseConfig, RunConfig, TrainerConfig

__all__ = [
    "ComponentSpec",
    "Config",
    "PhaseConfig",
    "RunConfig",
    "TrainerConfig",
    "load_config",
    "load_layers",
    "parse_overrides",
    "to_yaml",
    "validate",
]
