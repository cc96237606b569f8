"""A stage run's identity: its resolved config minus placement settings, hashed."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from omegaconf import OmegaConf

HASH_CHARS = 8

# Settings that say where a stage is written or how it is watched, not what it trains: they
# stay out of its identity, so e.g. another checkpoint cadence does not retrain a stage.
# run.init_from of the pipeline is replaced by the identities of the source stage runs.
NOT_IN_IDENTITY = {
    "run": (
        "name",
        "root",
        "resume",
        "overwrite",
        "config_path",  # placement and start mode
        "ckpt_every_n_steps",
        "min_free_mb",
        "rdp_figure",
    ),  # checkpoint cadence, disk check, TB figure
    "trainer": ("log_every_n_steps", "enable_progress_bar"),
    "phase": ("image_every",),  # TensorBoard image grids
}


def _schema_defaults(phase_name: str) -> dict:
    from hdc_lightning import registry
    from hdc_lightning.config.schema import Config

    out = OmegaConf.to_container(OmegaConf.structured(Config))
    schema = getattr(registry.get("phase", phase_name).factory, "Config", None)
    out["phase"] = OmegaConf.to_container(OmegaConf.structured(schema)) if schema else {}
    return json.loads(json.dumps(out, default=str))


def _without_defaults(values: Any, defaults: Any) -> Any:
    if not (isinstance(values, dict) and isinstance(defaults, dict)):
        return values
    pruned = {
        k: _without_defaults(v, defaults.get(k)) for k, v in values.items() if k not in defaults or v != defaults[k]
    }
    return {k: v for k, v in pruned.items() if v != {} or k not in defaults}


def stage_identity(cfg: dict, sources: dict[str, tuple[str, str]]) -> dict:
    """The resolved config minus :data:`NOT_IN_IDENTITY`, plus ``{attr: (source key, prefix)}``.

    Settings equal to their schema default are left out, so a code update that adds an option
    (at a default that keeps today's behaviour) does not make every trained stage a new one;
    two configs that resolve to the same values still get the same identity, any other two not."""
    ident = _without_defaults(json.loads(json.dumps(cfg, default=str)), _schema_defaults(cfg["phase"]["name"]))
    for section, keys in NOT_IN_IDENTITY.items():
        for key in keys:
            ident.get(section, {}).pop(key, None)
    ident["init_from_stages"] = {
        attr: {"stage": key, "prefix": prefix} for attr, (key, prefix) in sorted(sources.items())
    }
    return ident


def digest(identity: dict) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
