"""What every importer shares: read the file without running code, map, load strictly, write a stage.

A family (:class:`Family`) knows where its file keeps the weights, how its keys become ours
and which arguments of our model (``vq`` or ``mlicpp``) its shapes mean; :func:`import_file`
does the rest::

    FILE ─ safe_load(legacy) ─ family.weights ─ family.convert ─ build model(args) ─ load(strict)
        ─ family.finish ─ STAGE_DIR/checkpoints/last.ckpt (``model.*``, as `hdc export` writes)
        + import.json
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from hdc_lightning.codec.api import STATE_PREFIX, export_checkpoint
from hdc_lightning.errors import CheckpointError, first_line
from hdc_lightning.fileio import check_output, sha256_file, write_text
from hdc_lightning.rundir import last_ckpt_of

MANIFEST = "import.json"
TOKEN_PIXELS = 16 * 16  # pixels per index of an f16 model (bpp of a full index map = log2 K / 256)


def describe_vq(model: torch.nn.Module) -> dict[str, Any]:
    """Manifest facts of an imported VQ stage."""
    k = model.codebook_size
    return {
        "codebook_size": k,
        "code_dim": model.code_dim,
        "bpp_full_index_map": round(math.log2(k) / TOKEN_PIXELS, 4),
    }


@dataclass(frozen=True)
class Family:
    kind: str  # the `hdc import` KIND
    repo: str  # where the weights and the original code live
    licence: str
    mapping_version: int  # bumped whenever ``convert`` changes what it produces
    weights: Callable[[dict, str], Mapping[str, Any]]  # checkpoint → its model state
    convert: Callable[[Mapping[str, torch.Tensor], str], tuple[dict[str, torch.Tensor], dict[str, Any]]]
    presets: tuple[str, ...] = field(default_factory=tuple)  # our presets of its published files
    model: str = "vq"  # the registry name it builds
    # state our model keeps from its own initialisation where the file has none (key prefixes)
    own_state: tuple[str, ...] = ("prior.",)
    finish: Callable[[torch.nn.Module], Any] | None = None  # after the strict load (e.g. build tables)
    describe: Callable[[torch.nn.Module], dict[str, Any]] = describe_vq


def stack_args(state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Our conv-stack arguments from the shapes of mapped ``g_a.*`` tensors."""
    ch = int(state["g_a.conv_in.weight"].shape[0])
    levels = sorted({int(k.split(".")[2]) for k in state if k.startswith("g_a.levels.")})
    ch_mult = [int(state[f"g_a.levels.{i}.0.conv1.weight"].shape[0]) // ch for i in levels]
    first = {k.split(".")[3] for k in state if k.startswith("g_a.levels.0.") and ".conv1." in k}
    return dict(ch=ch, ch_mult=ch_mult, num_res_blocks=len(first), norm_groups=32)


def require(state: Mapping[str, Any], keys: tuple[str, ...], source: str) -> None:
    missing = [k for k in keys if k not in state]
    if missing:
        raise CheckpointError(f"{source}: has no {', '.join(missing)}; not a file of this kind")


def _spec(model: str, args: dict[str, Any], presets: tuple[str, ...]) -> dict[str, Any]:
    """``{name, preset, args}``: a named preset when the shapes are exactly one of ours."""
    from hdc_lightning import registry

    entry = registry.get("model", model)
    for name in presets:
        kwargs = entry.kwargs_for(name, {})
        if {k: _plain(v) for k, v in kwargs.items()} == {k: _plain(v) for k, v in args.items()}:
            return {"name": model, "preset": name, "args": {}}
    return {"name": model, "preset": None, "args": args}


def _plain(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def build_loaded(family: Family, state: Mapping[str, torch.Tensor], source: str) -> tuple[torch.nn.Module, dict]:
    """Our model with the family's weights loaded strictly, and its spec."""
    from hdc_lightning import registry

    try:
        ours, args = family.convert(state, source)
    except KeyError as e:
        raise CheckpointError(f"{source}: has no {e.args[0]}; not a {family.kind} file") from None
    spec = _spec(family.model, args, family.presets)
    try:
        model = registry.build_spec("model", spec, where=f"{source}: model")
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{source}: its shapes make no {family.model} model ({first_line(e)})") from None
    own = model.state_dict()
    for key, value in own.items():  # parts the published model lacks start as ours do
        if key.startswith(family.own_state) and key not in ours:
            ours[key] = value
    missing, unexpected = sorted(set(own) - set(ours)), sorted(set(ours) - set(own))
    if missing or unexpected:
        what = "; ".join(
            f"{lbl} {', '.join(ks[:3])}" for lbl, ks in (("missing", missing), ("extra", unexpected)) if ks
        )
        raise CheckpointError(f"{source}: does not fit {family.model} {spec['preset'] or spec['args']} ({what})")
    for key, value in ours.items():
        if value.shape != own[key].shape:
            raise CheckpointError(f"{source}: {key} has shape {tuple(value.shape)}, expected {tuple(own[key].shape)}")
    model.load_state_dict(ours, strict=True)
    if family.finish is not None:
        family.finish(model)
    return model.eval(), spec


def read_weights(family: Family, path: Path) -> dict[str, torch.Tensor]:
    """The model tensors of a downloaded file (weights-only read; old Lightning files included)."""
    from hdc_lightning.checkpoints import safe_load

    source = str(path)
    state = family.weights(safe_load(path, legacy=True), source)
    if not isinstance(state, Mapping) or not state:
        raise CheckpointError(f"{source}: holds no model weights where a {family.kind} file keeps them")
    bad = [k for k, v in state.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{source}: entry {bad[0]!r} of its weights is not a tensor")
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def import_file(family: Family, path: str | Path, stage_dir: str | Path, force: bool = False) -> dict[str, Any]:
    """Convert ``path`` into the stage directory ``stage_dir``; returns the manifest."""
    path, stage_dir = Path(path), Path(stage_dir)
    ckpt, manifest_path = last_ckpt_of(stage_dir), stage_dir / MANIFEST
    for out in (ckpt, manifest_path):
        check_output(out, [path], force)
    model, spec = build_loaded(family, read_weights(family, path), str(path))
    export_checkpoint(model, spec, str(ckpt))
    manifest = {
        "kind": family.kind,
        "source": {"file": path.name, "sha256": sha256_file(path), "bytes": path.stat().st_size, "repo": family.repo},
        "licence": family.licence,
        "mapping_version": family.mapping_version,
        "model": spec,
        **family.describe(model),
        "checkpoint": str(ckpt.relative_to(stage_dir)),
        "checkpoint_sha256": sha256_file(ckpt),
        "init_from": {"ckpt": str(ckpt), "prefix": STATE_PREFIX},
    }
    write_text(manifest_path, json.dumps(manifest, indent=1) + "\n")
    return manifest
