"""Randomly initialised tiny models (seeded) and checkpoints of them that ``load_codec`` reads."""

from __future__ import annotations

from pathlib import Path

import torch

TINY_LIC_SPEC = {"name": "lic", "preset": "tiny", "args": {}}


def tiny_spec(name: str = "lic", **args) -> dict:
    """The config spec ``{name, preset: tiny, args}`` of a registered model."""
    return {"name": name, "preset": "tiny", "args": dict(args)}


def tiny_model(name: str = "lic", seed: int = 0, **args):
    """``(model, spec)``: the tiny preset of ``name`` (``args`` on top), built right after
    ``torch.manual_seed(seed)``, in eval mode."""
    from hdc_lightning.registry import build_spec

    spec = tiny_spec(name, **args)
    torch.manual_seed(seed)
    return build_spec("model", spec).eval(), spec


def toy_vq(**args):
    """A VQ autoencoder narrower than the tiny preset (8 channels, K=64, f16), ``args`` on top:
    fast enough to train for a few hundred steps inside a test."""
    from hdc_lightning.models.vq import VQModel

    return VQModel(
        **{"ch": 8, "ch_mult": (1, 1, 2, 2, 4), "num_res_blocks": 1, "codebook_size": 64, "code_dim": 16, **args}
    )


def random_init_checkpoint(path: str | Path, spec: dict | str | None = None, seed: int = 0) -> Path:
    """A weights-only checkpoint of a randomly initialised model in the format ``load_codec``
    reads. ``spec``: ``{name, preset, args}``, or a model name for its tiny preset; default
    the tiny LIC."""
    from hdc_lightning.codec import export_checkpoint
    from hdc_lightning.registry import build_spec

    spec = tiny_spec(spec) if isinstance(spec, str) else dict(spec or TINY_LIC_SPEC)
    torch.manual_seed(seed)
    model = build_spec("model", spec).eval()
    export_checkpoint(model, spec, str(path))
    return Path(path)
