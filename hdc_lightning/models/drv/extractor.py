"""DRV extractor: ground-truth dense representative vectors from (x̂, x), training only."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from hdc_lightning.models.drv.layers import VectorEncoder, check_image
from hdc_lightning.registry import register

DRV_NAMES = ("L", "P")


class DRVs(NamedTuple):
    """The two DRVs: ``v_L`` steers the LIC enhancer, ``v_P`` the index predictor.

    A field is None when that DRV is switched off (ablations), and modules then run
    without modulation.
    """

    v_L: torch.Tensor | None = None
    v_P: torch.Tensor | None = None

    def get(self, name: str) -> torch.Tensor | None:
        return getattr(self, f"v_{name}")


def check_names(names) -> tuple[str, ...]:
    names = tuple(names)
    bad = [n for n in names if n not in DRV_NAMES]
    if bad or len(set(names)) != len(names):
        raise ValueError(f"DRV names must be distinct values from {DRV_NAMES}, got {names}")
    return names


@register(
    "model",
    "drv_extractor",
    presets={
        "tiny": dict(dim=32, ch=16, n_blocks=1, n_down=2),
        "small": dict(dim=64, ch=32, n_blocks=1, n_down=3),
        "paper": dict(dim=256, ch=64, n_blocks=4, n_down=3),
    },
)
class DRVExtractor(nn.Module):
    """Ground-truth DRVs from the base reconstruction and the original (after DiffIR's CPEN).

    Used while training only: the decoder never sees x, so at decode time the DRVs are
    sampled by :class:`~hdc_lightning.models.drv.sampler.DRVSampler` instead (0 bits).
    One shared trunk, one MLP head per DRV::

        x̂ ─┐
            ├ concat ─ unshuffle(4) ─ conv ─ res blocks ─ strided convs ─ pool ─┬ head_L ─ v_L
        x ──┘                                                                   └ head_P ─ v_P

    Citation: Lu et al., "HDCompression", arXiv 2502.07160 (2025); Xia et al., "DiffIR",
    ICCV 2023 (the compact prior extractor this follows).
    """

    def __init__(self, dim: int = 256, ch: int = 64, n_blocks: int = 4, n_down: int = 3, names=DRV_NAMES):
        super().__init__()
        self.dim, self.names = dim, check_names(names)
        self.trunk = VectorEncoder(in_ch=6, ch=ch, n_blocks=n_blocks, n_down=n_down, out_dim=0)
        c = self.trunk.out_ch
        self.heads = nn.ModuleDict(
            {n: nn.Sequential(nn.Linear(c, 2 * dim), nn.LeakyReLU(0.2), nn.Linear(2 * dim, dim)) for n in self.names}
        )

    def forward(self, x_hat: torch.Tensor, x: torch.Tensor) -> DRVs:
        check_image(x_hat, 4, "x_hat")
        if x.shape != x_hat.shape:
            raise ValueError(f"x {tuple(x.shape)} and x_hat {tuple(x_hat.shape)} differ in shape")
        h = self.trunk.features(torch.cat([x_hat, x], dim=1))
        return DRVs(**{f"v_{n}": head(h) for n, head in self.heads.items()})
