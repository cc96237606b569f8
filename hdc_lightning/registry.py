"""One registry for every component: short stable names, named presets, clear errors.

Components register with a decorator and are built from a config spec
``{name, preset, args}``; a preset is a dict of constructor keyword arguments, and
``args`` override it::

    @register("model", "lic", presets={"tiny": dict(N=32, M=48), "paper": dict(N=192, M=320)})
    class LIC(nn.Module): ...

    build("model", "lic", preset="tiny", M=64)

Losses are built from a phase's config by :func:`build_from` (the config holds their defaults).

Kinds: ``model`` (plain nn.Modules), ``loss``, ``phase`` (LightningModules).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hdc_lightning.errors import RegistryError

KINDS = ("model", "loss", "phase")
# The package whose import registers each kind; imported on the first lookup of that kind
# only, so that `import hdc_lightning.registry` stays cheap and free of side effects and
# building a model (e.g. in load_codec) never imports the phases, i.e. Lightning.
_COMPONENT_PACKAGES = {"model": "hdc_lightning.models", "loss": "hdc_lightning.losses", "phase": "hdc_lightning.phases"}


@dataclass
class Entry:
    kind: str
    name: str
    factory: Callable[..., Any]
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)

    def kwargs_for(self, preset: str | None, overrides: Mapping[str, Any]) -> dict[str, Any]:
        if preset is None:
            base: dict[str, Any] = {}
        elif preset in self.presets:
            base = dict(self.presets[preset])
        else:
            known = ", ".join(sorted(self.presets)) or "(none)"
            raise RegistryError(f"{self.kind} '{self.name}' has no preset '{preset}'; known presets: {known}")
        base.update(overrides)
        return base


_ENTRIES: dict[str, dict[str, Entry]] = {k: {} for k in KINDS}


def _check_kind(kind: str) -> None:
    if kind not in _ENTRIES:
        raise RegistryError(f"unknown component kind '{kind}'; known kinds: {', '.join(KINDS)}")


def register(kind: str, name: str, presets: Mapping[str, Mapping[str, Any]] | None = None):
    """Class/function decorator adding a component under ``kind``/``name``."""
    _check_kind(kind)

    def deco(factory):
        if name in _ENTRIES[kind] and _ENTRIES[kind][name].factory is not factory:
            raise RegistryError(f"{kind} '{name}' is registered twice")
        _ENTRIES[kind][name] = Entry(kind, name, factory, {k: dict(v) for k, v in (presets or {}).items()})
        return factory

    return deco


def load_components(kind: str) -> None:
    """Import the package that registers ``kind`` (a no-op once imported)."""
    importlib.import_module(_COMPONENT_PACKAGES[kind])


def get(kind: str, name: str) -> Entry:
    _check_kind(kind)
    load_components(kind)
    try:
        return _ENTRIES[kind][name]
    except KeyError:
        known = ", ".join(sorted(_ENTRIES[kind])) or "(none)"
        raise RegistryError(f"unknown {kind} '{name}'; known {kind}s: {known}") from None


def names(kind: str) -> list[str]:
    _check_kind(kind)
    load_components(kind)
    return sorted(_ENTRIES[kind])


def check_kwargs(entry: Entry, kwargs: Mapping[str, Any], where: str) -> None:
    """Fail early, naming the key, if ``kwargs`` has a key the factory does not take."""
    target = entry.factory.__init__ if inspect.isclass(entry.factory) else entry.factory
    params = inspect.signature(target).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    for key in kwargs:
        if key not in params:
            allowed = ", ".join(p for p in params if p != "self")
            raise RegistryError(
                f"{where}.{key}: {entry.kind} '{entry.name}' takes no argument '{key}'; it takes: {allowed}"
            )


def build(kind: str, name: str, preset: str | None = None, where: str | None = None, **overrides: Any) -> Any:
    """Instantiate ``name`` with its ``preset`` kwargs updated by ``overrides``."""
    entry = get(kind, name)
    kwargs = entry.kwargs_for(preset, overrides)
    check_kwargs(entry, kwargs, where or f"{kind}:{name}")
    return entry.factory(**kwargs)


def build_from(kind: str, name: str, source: Any, where: str, prefix: str = "") -> Any:
    """Build ``name`` with each keyword-only constructor argument ``a`` read from
    ``source.<prefix><a>`` (a phase's config dataclass).

    Losses take keyword-only arguments without defaults, so a default lives in the config
    only; a config that lacks one of them is named in the error.
    """
    entry = get(kind, name)
    target = entry.factory.__init__ if inspect.isclass(entry.factory) else entry.factory
    keys = [p.name for p in inspect.signature(target).parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    missing = [prefix + k for k in keys if not hasattr(source, prefix + k)]
    if missing:
        raise RegistryError(f"{where}: {kind} '{name}' needs {', '.join(missing)}, which the config does not define")
    return entry.factory(**{k: getattr(source, prefix + k) for k in keys})


def build_spec(kind: str, spec: Mapping[str, Any], where: str = "model") -> Any:
    """Build from a config spec ``{name, preset, args}`` (``where`` names it in errors)."""
    if "name" not in spec or not spec["name"]:
        raise RegistryError(f"{where}.name is missing; known {kind}s: {', '.join(names(kind))}")
    return build(kind, spec["name"], spec.get("preset"), where=f"{where}.args", **dict(spec.get("args") or {}))
