"""``hdc import mlicpp``: the MLIC++ models of Jiang & Wang (``JiangWeibeta/MLIC``, Apache-2.0).

The 2024-04 checkpoints (83.5 M parameters; the 2023-09 ones have an older g_s and LRP and are
refused) keep the weights under ``state_dict``, beside optimizer and scheduler state (compressai 1.2.0b3 names:
``entropy_bottleneck._matrix{i}``/``_bias{i}``/``_factor{i}``; later compressai names are read
too). Our ``mlicpp`` model computes the same function; the names differ only in the
containers:

    g_a.analysis_transform.* → g_a.*       g_s.synthesis_transform.* → g_s.*
    h_a.reduction.* → h_a.*                h_s.increase.* → h_s.*
    channel_context.{i}.fushion.* → channel_context.{i}.fusion.*
    entropy_bottleneck._matrix{i} → entropy_bottleneck.matrices.{i} (_bias, _factor alike)

The published CDF tables (built for MLIC++'s 64-level scale table) and the window's
``relative_position_index`` (derived) are dropped: ``update()`` builds our tables for our
scale table, and the exact path's tables, after the strict load.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import torch

from hdc_lightning.errors import CheckpointError
from hdc_lightning.importers.base import Family, require

RENAMES = (
    (re.compile(r"^g_a\.analysis_transform\."), "g_a."),
    (re.compile(r"^g_s\.synthesis_transform\."), "g_s."),
    (re.compile(r"^h_a\.reduction\."), "h_a."),
    (re.compile(r"^h_s\.increase\."), "h_s."),
    (re.compile(r"^(channel_context\.\d+)\.fushion\."), r"\1.fusion."),
    (re.compile(r"^entropy_bottleneck\._matrix(\d+)$"), r"entropy_bottleneck.matrices.\1"),
    (re.compile(r"^entropy_bottleneck\._bias(\d+)$"), r"entropy_bottleneck.biases.\1"),
    (re.compile(r"^entropy_bottleneck\._factor(\d+)$"), r"entropy_bottleneck.factors.\1"),
)
DROPPED = re.compile(
    r"^(entropy_bottleneck|gaussian_conditional)\.(_quantized_cdf|_offset|_cdf_length|scale_table)$"
    r"|\.relative_position_index$"
)
# ours, built after the load: the CDF tables, the exact path's tables, and bounds that older
# compressai versions did not store
OWN_STATE = (
    "entropy_bottleneck._",
    "gaussian_conditional._",
    "gaussian_conditional.scale_table",
    "gaussian_conditional.scale_bound",
    "gelu_table",
    "tanh_table",
    "exp_table",
)


def weights(ckpt: dict, source: str) -> Mapping[str, Any]:
    if "state_dict" not in ckpt:
        raise CheckpointError(f"{source}: has no 'state_dict'; not an MLIC++ checkpoint")
    return ckpt["state_dict"]


def _rename(key: str) -> str:
    for pattern, repl in RENAMES:
        key, n = pattern.subn(repl, key)
        if n:
            return key
    return key


def _hidden(state: Mapping[str, torch.Tensor], prefix: str) -> tuple[int, ...]:
    """Output widths of the convs under ``prefix`` but the last, in order."""
    convs = sorted(
        (int(m.group(1)), v.shape[0])
        for k, v in state.items()
        if (m := re.fullmatch(re.escape(prefix) + r"(\d+)\.weight", k))
    )
    return tuple(int(w) for _, w in convs[:-1])


def convert(state: Mapping[str, torch.Tensor], source: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    require(
        state,
        (
            "g_a.analysis_transform.0.conv1.weight",
            "h_a.reduction.0.weight",
            "entropy_parameters_anchor.0.fusion.0.weight",
        ),
        source,
    )
    m = int(state["h_a.reduction.0.weight"].shape[1])
    first = state.get("g_s.synthesis_transform.0.conv1.weight")
    if first is not None and int(first.shape[0]) != m:  # SynthesisTransformOld starts M → N
        raise CheckpointError(
            f"{source}: an MLIC++ checkpoint of 2023-09 (SynthesisTransformOld, LatentResidualPredictionOld); "
            "only the 2024-04 checkpoints (83.5 M parameters, the README's 'Update checkpoint') are supported"
        )
    ours = {_rename(k): v for k, v in state.items() if not DROPPED.search(k)}
    slices = 1 + max(int(k.split(".")[1]) for k in ours if k.startswith("entropy_parameters_anchor."))
    table = ours.get("local_context.0.relative_position_table")
    if table is None:
        raise CheckpointError(f"{source}: has no local_context.0.relative_position_table; not an MLIC++ file")
    window = (math.isqrt(table.shape[0]) + 1) // 2
    args = dict(
        N=int(ours["g_a.0.conv1.weight"].shape[0]),
        M=m,
        slices=slices,
        window=window,
        ep_hidden=list(_hidden(ours, "entropy_parameters_anchor.0.fusion.")),
        cc_hidden=list(_hidden(ours, "channel_context.1.fusion.")) if slices > 1 else [192, 128],
        lrp_hidden=list(_hidden(ours, "lrp_anchor.0.lrp_transform.")),
    )
    defaults = dict(window=5, ep_hidden=[320, 256, 128], cc_hidden=[192, 128], lrp_hidden=[224, 128])
    args = {k: v for k, v in args.items() if defaults.get(k) != v}  # so the published shapes name a preset
    return ours, args


def finish(model: torch.nn.Module) -> None:
    model.update(force=True)


def describe(model: torch.nn.Module) -> dict[str, Any]:
    return {"N": model.N, "M": model.M, "slices": model.slices, "scale_levels": model.scale_levels}


FAMILY = Family(
    kind="mlicpp",
    repo="JiangWeibeta/MLIC",
    licence="Apache-2.0",
    mapping_version=1,
    weights=weights,
    convert=convert,
    presets=("paper",),
    model="mlicpp",
    own_state=OWN_STATE,
    finish=finish,
    describe=describe,
)
