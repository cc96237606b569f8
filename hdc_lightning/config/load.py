"""Layered config loading: base → phase → preset → CLI dotlist overrides.

A YAML file may name the files it builds on in ``extends:`` (paths relative to itself);
they are merged first, in order, then the file itself, then the overrides. The result is
validated against :class:`~hdc_lightning.config.schema.Config` and the phase's own schema,
so a misspelt key fails before anything starts, naming its full key path.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from hdc_lightning.config.schema import Config
from hdc_lightning.errors import ConfigError, RegistryError, first_line
from hdc_lightning.fileio import read_regular

EXTENDS_KEY = "extends"
_MAX_DEPTH = 16
MAX_CONFIG_BYTES = 1 << 20
MAX_NESTING = 32  # configs nest a handful of levels; YAML/JSON bombs nest thousands
MAX_NODES = 100_000  # values after aliases are expanded; an alias bomb expands to billions


def _expanded_size(node: yaml.Node, depth: int, memo: dict[int, int]) -> int:
    """Number of values ``node`` stands for once every alias is expanded (anchored nodes are
    shared, so the memo keeps this linear in the file); ConfigError past the limits."""
    if depth > MAX_NESTING:
        raise ConfigError(f"nested deeper than {MAX_NESTING} levels")
    if id(node) in memo:
        return memo[id(node)]
    children = node.value if isinstance(node, (yaml.SequenceNode, yaml.MappingNode)) else []
    if isinstance(node, yaml.MappingNode):
        children = [n for pair in children for n in pair]
    size = 1 + sum(_expanded_size(child, depth + 1, memo) for child in children)
    if size > MAX_NODES:
        raise ConfigError(f"expands to more than {MAX_NODES} values (YAML aliases)")
    memo[id(node)] = size
    return size


def check_yaml_size(text: str) -> None:
    """ConfigError when ``text`` (YAML) nests deeper than MAX_NESTING or expands, aliases
    included, to more than MAX_NODES values; composed only, nothing is built. YAMLError as
    yaml raises it for text that does not parse."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:
        raise ConfigError(f"nested deeper than {MAX_NESTING} levels") from None
    if root is not None:
        _expanded_size(root, 0, {})


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        text = read_regular(path, MAX_CONFIG_BYTES, "config file").decode("utf-8")
        # Bounded first (aliases not expanded); then safe_load: a config can never construct
        # Python objects or run code.
        check_yaml_size(text)
        data = yaml.safe_load(text)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        first = first_line(e)
        raise ConfigError(f"{path}: not valid YAML ({first})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def load_layers(path: str | Path, _depth: int = 0, _chain: tuple = ()) -> DictConfig:
    """Merge ``path`` over the files named in its ``extends:`` list (recursively)."""
    path = Path(path)
    if _depth > _MAX_DEPTH or path.resolve() in _chain:
        raise ConfigError(f"{path}: 'extends' forms a cycle or is nested deeper than {_MAX_DEPTH}")
    data = _read_yaml(path)
    parents = data.pop(EXTENDS_KEY, []) or []
    if isinstance(parents, str):
        parents = [parents]
    if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents):
        raise ConfigError(f"{path}: '{EXTENDS_KEY}' must be a path or a list of paths")
    merged = OmegaConf.create()
    for parent in parents:
        merged = OmegaConf.merge(merged, load_layers(path.parent / parent, _depth + 1, _chain + (path.resolve(),)))
    try:
        return OmegaConf.merge(merged, OmegaConf.create(data))
    except OmegaConfBaseException as e:
        raise ConfigError(f"{path}: {_one_line(e)}") from None


def parse_overrides(overrides: Iterable[str]) -> DictConfig:
    items = list(overrides)
    for item in items:
        if "=" not in item or item.startswith("="):
            raise ConfigError(f"override '{item}': expected key.path=value")
        try:  # a value is YAML too: the same bounds as a file
            check_yaml_size(item.split("=", 1)[1])
        except ConfigError as e:
            raise ConfigError(f"override '{item[:60]}': {e}") from None
        except yaml.YAMLError:
            pass  # OmegaConf reports it below, as before
    try:
        return OmegaConf.from_dotlist(items)
    except (OmegaConfBaseException, yaml.YAMLError) as e:  # a value's YAML tag (e.g. !!python/...) is refused
        raise ConfigError(f"overrides: {_one_line(e)}") from None


def _one_line(e: Exception) -> str:
    msg = getattr(e, "msg", None) or str(e)
    return msg.strip().splitlines()[0] if msg.strip() else type(e).__name__


def validate(raw: DictConfig, schema: Any, where: str) -> DictConfig:
    """Merge ``raw`` into the structured ``schema``; unknown keys or bad types raise ConfigError."""
    try:
        return OmegaConf.merge(OmegaConf.structured(schema), raw)
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None)
        full = f"{where}.{key}" if key and where else (key or where)
        raise ConfigError(f"{full}: {_one_line(e)}") from None
    except TypeError as e:  # OmegaConf: a list where the schema has a mapping, or the reverse
        raise ConfigError(f"{where or 'config'}: a section has the wrong kind of value ({_one_line(e)})") from None


def validate_phase(phase: Any, where: str = "phase") -> dict:
    """Validate a ``phase:`` section against the registered phase's ``Config`` dataclass."""
    from hdc_lightning import registry

    phase = OmegaConf.create(phase if phase is not None else {})
    name = phase.get("name")
    if not name:
        raise ConfigError(f"{where}.name is missing; known phases: {', '.join(registry.names('phase'))}")
    try:
        entry = registry.get("phase", name)
    except RegistryError as e:
        raise ConfigError(f"{where}.name: {e}") from None
    schema = getattr(entry.factory, "Config", None)
    if schema is None:
        return OmegaConf.to_container(phase, resolve=True)
    return OmegaConf.to_container(validate(phase, schema, where), resolve=True)


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> dict:
    """Load, layer, override and validate a training config; returns a plain dict."""
    path = Path(path)
    raw = OmegaConf.merge(load_layers(path), parse_overrides(overrides))
    cfg = validate(raw, Config, "")
    try:
        container = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or "?"
        raise ConfigError(f"{path}: {key}: {_one_line(e)}") from None
    container["phase"] = validate_phase(container.get("phase"))
    if not container["run"]["name"]:
        container["run"]["name"] = path.stem if path.parent.name in ("", ".") else f"{path.parent.name}-{path.stem}"
    from hdc_lightning.config.values import check_values
    from hdc_lightning.rundir import check_run_name

    check_run_name(container["run"]["name"])  # before any data or model is built
    check_values(container)
    container["run"]["config_path"] = str(path)
    return container


def to_yaml(cfg: dict) -> str:
    return OmegaConf.to_yaml(OmegaConf.create(cfg))
