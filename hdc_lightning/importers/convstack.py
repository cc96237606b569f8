"""The VQGAN conv stack's keys in the published layouts → ours (``g_a``/``g_s`` of :mod:`blocks`).

Taming-transformers and LlamaGen share one encoder/decoder design (residual blocks with
``norm1, conv1, norm2, conv2, nin_shortcut``; attention with separate ``q, k, v, proj_out``
1×1 convs) and differ in container names only. Each family's module gives regular
expressions that turn its keys into a :class:`Site`; :func:`map_stack` places every site
in our layout, where a level's attention blocks sit between its residual blocks
(``levels.{i}.{2j}`` residual, ``levels.{i}.{2j+1}`` attention) and ``q, k, v`` are one conv.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import NamedTuple

import torch

from hdc_lightning.errors import CheckpointError

SIDES = {"encoder": "g_a", "decoder": "g_s"}
MID = ("res", "attn", "res")  # mid.0, mid.1, mid.2 of both sides
RENAME = {"nin_shortcut": "skip", "proj_out": "proj"}
QKV = ("q", "k", "v")


class Site(NamedTuple):
    side: str  # "encoder" | "decoder"
    part: str  # "level" | "resample" | "mid" | "top" (conv_in, norm_out, conv_out)
    level: int  # the source's level number (-1 for mid/top)
    kind: str  # "res" | "attn" | "" (resample) | the layer's name (top)
    index: int  # block number within the level (mid: 0-2)
    rest: str  # what follows, e.g. "conv1.weight" (resample, top: "weight")


# A family's key parser: a Site for each conv-stack key, None for anything else.
Parser = Callable[[str], Site | None]


def parse_with(patterns: Mapping[str, re.Pattern], mid_index: Callable[[str], int]) -> Parser:
    """A parser from one regex per part (named groups side, level, kind, index, name, rest);
    ``mid_index`` turns the source's name of a middle block into 0, 1 or 2."""

    def parse(key: str) -> Site | None:
        for part, rx in patterns.items():
            m = rx.fullmatch(key)
            if m is None:
                continue
            g = m.groupdict()
            if part == "mid":
                i = mid_index(g["name"])
                return Site(g["side"], part, -1, MID[i], i, g["rest"])
            if part == "top":
                return Site(g["side"], part, -1, g["name"], 0, g["rest"])
            kind = {"block": "res", "res": "res", "attn": "attn"}.get(g.get("kind") or "", "")
            return Site(g["side"], part, int(g["level"]), kind, int(g.get("index") or 0), g["rest"])
        return None

    return parse


def map_stack(
    state: Mapping[str, torch.Tensor], parse: Parser, decoder_levels_reversed: bool, source: str
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """(our ``g_a.*``/``g_s.*`` tensors, the keys ``parse`` did not recognise).

    ``decoder_levels_reversed``: the source numbers decoder levels by resolution (taming:
    ``up.0`` is the full-resolution level, run last) rather than in the order they run.
    """
    sites = {key: parse(key) for key in state}
    levels = {s.side: set() for s in sites.values() if s}
    attn: set[tuple[str, int]] = set()
    for s in filter(None, sites.values()):
        if s.part == "level":
            levels[s.side].add(s.level)
            if s.kind == "attn":
                attn.add((s.side, s.level))
    n = {side: len(found) for side, found in levels.items()}
    out: dict[str, torch.Tensor] = {}
    qkv: dict[str, dict[str, torch.Tensor]] = {}
    for key, s in sites.items():
        if s is None:
            continue
        ours = SIDES[s.side] + "." + _place(s, n.get(s.side, 0), attn, decoder_levels_reversed)
        head, _, leaf = s.rest.rpartition(".")
        if s.kind == "attn" and head in QKV:
            qkv.setdefault(f"{ours}.qkv.{leaf}", {})[head] = state[key]
            continue
        out[f"{ours}.{RENAME.get(head, head)}.{leaf}" if head else f"{ours}.{leaf}"] = state[key]
    for key, parts in qkv.items():
        if set(parts) != set(QKV):
            raise CheckpointError(f"{source}: attention {key} lacks {', '.join(sorted(set(QKV) - set(parts)))}")
        out[key] = torch.cat([parts[p] for p in QKV])  # our qkv conv's output channels are q, k, v
    return out, [k for k, s in sites.items() if s is None]


def rename_rest(
    ours: dict[str, torch.Tensor],
    rest: list[str],
    state: Mapping[str, torch.Tensor],
    renames: Mapping[str, str],
    family: str,
    source: str,
) -> None:
    """Put each key ``map_stack`` left over into ``ours`` under the prefix ``renames`` gives it;
    a key no prefix matches is one line naming it."""
    for key in rest:
        prefix = next((p for p in renames if key.startswith(p)), None)
        if prefix is None:
            raise CheckpointError(f"{source}: unexpected key {key!r} for a {family}")
        ours[renames[prefix] + key[len(prefix) :]] = state[key]


def _place(s: Site, n_levels: int, attn: set[tuple[str, int]], reversed_decoder: bool) -> str:
    if s.part == "top":
        return s.kind
    if s.part == "mid":
        return f"mid.{s.index}"
    level = n_levels - 1 - s.level if s.side == "decoder" and reversed_decoder else s.level
    if s.part == "resample":
        return f"{'down' if s.side == 'encoder' else 'up'}.{level}"
    stride = 2 if (s.side, s.level) in attn else 1
    return f"levels.{level}.{s.index * stride + (s.kind == 'attn')}"
