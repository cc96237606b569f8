"""``hdc import llamagen-vq``: the VQ tokenizers of LlamaGen (FoundationVision, MIT licence).

Sun et al., "Autoregressive Model Beats Diffusion: Llama for Scalable Image Generation",
2024. VQ-16 (``vq_ds16_c2i.pt``) is the taming conv stack with an l2-normalised 8-dim
codebook of 16384 codes; the file keeps the weights under ``"ema"`` or ``"model"`` (LlamaGen's
own loaders prefer the EMA ones, as we do). Our ``vq`` model with ``lookup_dim=8`` and
``norm_groups=32`` is the same function, the names renamed:

    conv_blocks.{i}.res/attn → levels.{i}     quant_conv → quantizer.proj_in (256 → 8)
    quantize.embedding → quantizer.codebook   post_quant_conv → quantizer.proj_out (8 → 256)

Our ``post_quant`` (a 1×1 conv LlamaGen does not have) is imported as the identity, and
``quantize.codebook_used`` (a training-usage buffer) is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch

from hdc_lightning.errors import CheckpointError
from hdc_lightning.importers.base import Family, require, stack_args
from hdc_lightning.importers.convstack import map_stack, parse_with, rename_rest

_SIDE = r"(?P<side>encoder|decoder)\."
PARSE = parse_with(
    {
        "level": re.compile(_SIDE + r"conv_blocks\.(?P<level>\d+)\.(?P<kind>res|attn)\.(?P<index>\d+)\.(?P<rest>.+)"),
        "resample": re.compile(_SIDE + r"conv_blocks\.(?P<level>\d+)\.(?:downsample|upsample)\.conv\.(?P<rest>.+)"),
        "mid": re.compile(_SIDE + r"mid\.(?P<name>[012])\.(?P<rest>.+)"),
        "top": re.compile(_SIDE + r"(?P<name>conv_in|norm_out|conv_out)\.(?P<rest>weight|bias)"),
    },
    int,
)
RENAMES = {
    "quant_conv.": "quantizer.proj_in.",
    "post_quant_conv.": "quantizer.proj_out.",
    "quantize.embedding.": "quantizer.codebook.",
}
DROPPED = ("quantize.codebook_used",)
STATE_KEYS = ("ema", "model", "state_dict")  # LlamaGen's loaders' order


def weights(ckpt: dict, source: str) -> Mapping[str, Any]:
    for key in STATE_KEYS:
        if key in ckpt:
            return ckpt[key]
    raise CheckpointError(f"{source}: has none of {', '.join(STATE_KEYS)}; not a LlamaGen checkpoint")


def convert(state: Mapping[str, torch.Tensor], source: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    require(state, ("encoder.conv_in.weight", "quantize.embedding.weight", "post_quant_conv.weight"), source)
    kept = {k: v for k, v in state.items() if not k.startswith(DROPPED)}
    ours, rest = map_stack(kept, PARSE, decoder_levels_reversed=False, source=source)
    rename_rest(ours, rest, kept, RENAMES, "LlamaGen VQ", source)
    k, dim = state["quantize.embedding.weight"].shape
    z = int(state["post_quant_conv.weight"].shape[0])
    ours["post_quant.weight"] = torch.eye(z).reshape(z, z, 1, 1)
    ours["post_quant.bias"] = torch.zeros(z)
    return ours, dict(stack_args(ours), codebook_size=int(k), code_dim=z, lookup_dim=int(dim))


FAMILY = Family(
    kind="llamagen-vq",
    repo="FoundationVision/LlamaGen",
    licence="MIT",
    mapping_version=1,
    weights=weights,
    convert=convert,
    presets=("llamagen-vq16",),
)
