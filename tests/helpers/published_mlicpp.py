"""MLIC++ files in miniature: our ``mlicpp`` tiny model, random, saved in the published layout.

MLIC++'s code is on no registry, so the suite writes the layout its checkpoints have (the
names of ``JiangWeibeta/MLIC``'s modules under compressai 1.2.0b3, the CDF tables built for its
scale table, each window's ``relative_position_index``) from our model, and checks that the
import gives back the same function. The one-off comparison with the original code is
``benchmarks/mlicpp_equivalence.py`` (docs/pretrained.md), whose reference side calls
:func:`randomise` under MLIC++'s own compressai: so this module imports only torch at the top.
"""

from __future__ import annotations

import copy
import re

import torch

# ours → theirs (the inverse of hdc_lightning.importers.mlicpp.RENAMES)
TO_PUBLISHED = (
    (re.compile(r"^g_a\."), "g_a.analysis_transform."),
    (re.compile(r"^g_s\."), "g_s.synthesis_transform."),
    (re.compile(r"^h_a\."), "h_a.reduction."),
    (re.compile(r"^h_s\."), "h_s.increase."),
    (re.compile(r"^(channel_context\.\d+)\.fusion\."), r"\1.fushion."),
    (re.compile(r"^entropy_bottleneck\.matrices\.(\d+)$"), r"entropy_bottleneck._matrix\1"),
    (re.compile(r"^entropy_bottleneck\.biases\.(\d+)$"), r"entropy_bottleneck._bias\1"),
    (re.compile(r"^entropy_bottleneck\.factors\.(\d+)$"), r"entropy_bottleneck._factor\1"),
)
OURS_ONLY = re.compile(r"^(gelu|tanh|exp)_table$|^gaussian_conditional\.scale_bound$")


def randomise(model: torch.nn.Module, seed: int) -> None:
    """Every parameter random (GDN and norm affines and the entropy bottleneck's medians too),
    float32 values: default values would hide a mapping error."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            r = torch.randn(p.shape, generator=g, dtype=p.dtype)
            if name.endswith("quantiles"):
                p[..., 1] += 0.4 * r[..., 1]
            elif ".gdn." in name or ".igdn." in name or "entropy_bottleneck" in name:
                p.mul_(1 + 0.2 * r.abs())
            elif p.dim() > 1 and "relative_position_table" not in name:
                p.copy_(r / p[0].numel() ** 0.5)
            elif name.endswith("weight"):
                p.copy_(1 + 0.2 * r)
            else:
                p.copy_(0.1 * r)
            p.copy_(p.float())


def _published_name(key: str) -> str:
    for pattern, repl in TO_PUBLISHED:
        key, n = pattern.subn(repl, key)
        if n:
            return key
    return key


def published_state(model: torch.nn.Module, tables: bool = True) -> dict[str, torch.Tensor]:
    """``model``'s state as an MLIC++ checkpoint holds it (``tables``: with CDF tables built for
    MLIC++'s own 64-level scale table, as in a file saved after its ``update()``)."""
    from compressai.models.base import get_scale_table

    from hdc_lightning.models.mlicpp.context import relative_index

    state = {
        _published_name(k): v.detach().float() if v.is_floating_point() else v.detach()
        for k, v in model.state_dict().items()
        if not OURS_ONLY.search(k) and not (k.startswith(("entropy_bottleneck._", "gaussian_conditional._")))
    }
    state.pop("gaussian_conditional.scale_table", None)
    for i, local in enumerate(model.local_context):
        state[f"local_context.{i}.relative_position_index"] = relative_index(local.window)
    if tables:
        ref = copy.deepcopy(model)
        ref.entropy_bottleneck.update(force=True)
        ref.gaussian_conditional.update_scale_table(get_scale_table(0.11, 256, 64), force=True)
        for part in ("entropy_bottleneck", "gaussian_conditional"):
            for name in ("_quantized_cdf", "_offset", "_cdf_length"):
                state[f"{part}.{name}"] = getattr(ref, part)._buffers[name].clone()
        state["gaussian_conditional.scale_table"] = ref.gaussian_conditional.scale_table.clone()
    return state


def published_checkpoint(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> dict:
    """What MLIC++'s training script saves: the weights beside optimizer and scheduler state
    (Adam, MultiStepLR, whose milestones are a ``collections.Counter``)."""
    params = [p for n, p in model.named_parameters() if not n.endswith("quantiles")]
    aux = [p for n, p in model.named_parameters() if n.endswith("quantiles")]
    opt, aux_opt = torch.optim.Adam(params, lr=1e-4), torch.optim.Adam(aux, lr=1e-3)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[80, 100], gamma=0.1)
    return {
        "epoch": 7,
        "state_dict": state,
        "loss": torch.tensor(1.25),
        "optimizer": opt.state_dict(),
        "aux_optimizer": aux_opt.state_dict(),
        "lr_scheduler": sched.state_dict(),
    }
