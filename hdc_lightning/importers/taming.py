"""``hdc import taming-vqgan``: the VQGANs of taming-transformers (CompVis, MIT licence).

Esser et al., CVPR 2021. The published f16 models (``vqgan_imagenet_f16_1024``,
``vqgan_imagenet_f16_16384``) are PyTorch Lightning 1.0 checkpoints whose ``state_dict``
holds ``encoder.*``, ``decoder.*``, ``quant_conv.*``, ``quantize.embedding.weight``,
``post_quant_conv.*`` and the training loss (``loss.*``, dropped). Our ``vq`` model with
``quantizer="l2"`` and ``norm_groups=32`` computes the same function:

    quant_conv → quantizer.proj_in    quantize.embedding → quantizer.codebook
    post_quant_conv → post_quant      decoder.up.{i} → g_s.levels/up.{n-1-i} (taming numbers by resolution)
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
        "level": re.compile(_SIDE + r"(?:down|up)\.(?P<level>\d+)\.(?P<kind>block|attn)\.(?P<index>\d+)\.(?P<rest>.+)"),
        "resample": re.compile(_SIDE + r"(?:down|up)\.(?P<level>\d+)\.(?:downsample|upsample)\.conv\.(?P<rest>.+)"),
        "mid": re.compile(_SIDE + r"mid\.(?P<name>block_1|attn_1|block_2)\.(?P<rest>.+)"),
        "top": re.compile(_SIDE + r"(?P<name>conv_in|norm_out|conv_out)\.(?P<rest>weight|bias)"),
    },
    {"block_1": 0, "attn_1": 1, "block_2": 2}.__getitem__,
)
RENAMES = {
    "quant_conv.": "quantizer.proj_in.",
    "post_quant_conv.": "post_quant.",
    "quantize.embedding.": "quantizer.codebook.",
}
DROPPED = ("loss.",)  # the LPIPS + discriminator training loss


def weights(ckpt: dict, source: str) -> Mapping[str, Any]:
    if "state_dict" not in ckpt:
        raise CheckpointError(f"{source}: has no 'state_dict'; not a taming-transformers checkpoint")
    return ckpt["state_dict"]


def convert(state: Mapping[str, torch.Tensor], source: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    require(state, ("encoder.conv_in.weight", "quantize.embedding.weight", "quant_conv.weight"), source)
    kept = {k: v for k, v in state.items() if not k.startswith(DROPPED)}
    ours, rest = map_stack(kept, PARSE, decoder_levels_reversed=True, source=source)
    rename_rest(ours, rest, kept, RENAMES, "taming VQGAN", source)
    k, dim = state["quantize.embedding.weight"].shape
    z = int(state["encoder.conv_out.weight"].shape[0])
    if z != dim:
        raise CheckpointError(f"{source}: z_channels {z} differ from the code dim {dim}; only equal ones are supported")
    return ours, dict(stack_args(ours), codebook_size=int(k), code_dim=int(dim), quantizer="l2")


FAMILY = Family(
    kind="taming-vqgan",
    repo="CompVis/taming-transformers",
    licence="MIT",
    mapping_version=1,
    weights=weights,
    convert=convert,
    presets=("taming-f16-1024", "taming-f16-16384"),
)
