"""Denoising network for one DRV: an MLP over (condition c(x̂), step embedding, noisy vector)."""

from __future__ import annotations

import torch
from torch import nn

from hdc_lightning.models.drv.layers import VectorEncoder


class DRVDenoiser(nn.Module):
    """Predicts the clean DRV ``v_0`` from ``v_t`` at step ``t``, conditioned on x̂ only.

    ``condition(x_hat)`` runs the small CNN c(·) once per image; ``forward`` is the cheap
    MLP that the sampler calls at every step::

        x̂ ─ c(·) ─┐
        t ─ embed ─┼ concat ─ MLP ─ v̂_0
        v_t ───────┘
    """

    def __init__(
        self,
        dim: int,
        n_steps: int,
        cond_dim: int | None = None,
        cond_ch: int = 64,
        cond_blocks: int = 2,
        cond_down: int = 3,
        t_dim: int = 32,
        hidden: int = 1024,
        n_layers: int = 5,
    ):
        super().__init__()
        cond_dim = cond_dim or dim
        self.cond = VectorEncoder(in_ch=3, ch=cond_ch, n_blocks=cond_blocks, n_down=cond_down, out_dim=cond_dim)
        self.t_embed = nn.Embedding(n_steps, t_dim)
        layers: list[nn.Module] = []
        c = cond_dim + t_dim + dim
        for _ in range(max(1, n_layers - 1)):
            layers += [nn.Linear(c, hidden), nn.LeakyReLU(0.2)]
            c = hidden
        layers.append(nn.Linear(c, dim))
        self.mlp = nn.Sequential(*layers)

    def condition(self, x_hat: torch.Tensor) -> torch.Tensor:
        return self.cond(x_hat)

    def forward(self, v_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.mlp(torch.cat([cond, self.t_embed(t), v_t], dim=1))
