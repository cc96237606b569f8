"""Plain nearest-code vector quantiser, as the published taming-transformers VQGANs have it.

van den Oord et al., "Neural discrete representation learning", NeurIPS 2017; Esser et al.,
CVPR 2021. Unlike :class:`~hdc_lightning.models.vq.quantizer.CosineQuantizer` nothing is
normalised: a 1×1 conv (taming's ``quant_conv``) maps the encoder output into the code
space and the index is the code nearest in Euclidean distance::

    z_e ─ proj_in (1×1) ─ z ─ argmin_k ||z - e_k||² ─ indices ─ e_indices ─ z_q
    [B,C,h,w]        [B,D,h,w]                    [B,h,w]            [B,D,h,w]

It serves imported weights (``hdc import taming-vqgan``) and fine-tuning them; training
from scratch uses the cosine quantiser, which does not collapse.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hdc_lightning.models.vq.quantizer import QuantizerOutput, full_precision


class L2Quantizer(nn.Module):
    """``codebook_size`` codes of ``code_dim`` values, looked up after a 1×1 conv from ``in_dim``."""

    def __init__(self, codebook_size: int, code_dim: int, in_dim: int | None = None, beta: float = 0.25):
        super().__init__()
        if codebook_size < 2 or codebook_size > 65535:
            raise ValueError(f"codebook_size must be in [2, 65535], got {codebook_size}")
        self.codebook_size, self.code_dim, self.beta = codebook_size, code_dim, beta
        self.proj_in = nn.Conv2d(in_dim or code_dim, code_dim, 1)
        self.codebook = nn.Embedding(codebook_size, code_dim)
        # Taming's initialisation; imported weights replace it.
        nn.init.uniform_(self.codebook.weight, -1.0 / codebook_size, 1.0 / codebook_size)

    def codes(self) -> torch.Tensor:
        """The codebook ``[K, code_dim]`` (float32, or float64 in a float64 model)."""
        return full_precision(self.codebook.weight)

    def embed(self, indices: torch.Tensor) -> torch.Tensor:
        """Indices ``[B,h,w]`` → quantised latent ``[B,code_dim,h,w]``."""
        if indices.dtype != torch.long or indices.dim() != 3:
            raise ValueError(f"indices must be a LongTensor [B,h,w], got {indices.dtype} {tuple(indices.shape)}")
        if int(indices.min()) < 0 or int(indices.max()) >= self.codebook_size:
            raise ValueError(f"indices out of range [0, {self.codebook_size})")
        return F.embedding(indices, self.codes()).permute(0, 3, 1, 2)

    def unquantised(self, z_e: torch.Tensor) -> torch.Tensor:
        """What ``z_q`` would be with an unlimited codebook: the projected encoder output."""
        with torch.autocast(device_type=z_e.device.type, enabled=False):
            return self.proj_in(full_precision(z_e))

    def lookup(self, z_e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Projected vectors ``[B,h,w,D]`` and their nearest codes ``[B,h,w]``."""
        with torch.autocast(device_type=z_e.device.type, enabled=False):
            z = self.proj_in(full_precision(z_e)).permute(0, 2, 3, 1)
            e = self.codes().detach()
            # The expanded square distance, as taming computes it, so float64 ties break alike.
            dist = (z.detach() ** 2).sum(-1, keepdim=True) + (e**2).sum(-1) - 2 * z.detach() @ e.t()
        return z, dist.argmin(dim=-1)

    def forward(self, z_e: torch.Tensor) -> QuantizerOutput:
        with torch.autocast(device_type=z_e.device.type, enabled=False):
            z, indices = self.lookup(z_e)
            q = F.embedding(indices, self.codes())
            codebook_loss = F.mse_loss(q, z.detach())
            commit_loss = self.beta * F.mse_loss(z, q.detach())
            z_q = (z + (q - z).detach()).permute(0, 3, 1, 2)
        counts = torch.bincount(indices.flatten(), minlength=self.codebook_size).float()
        p = counts / counts.sum().clamp_min(1.0)
        perplexity = torch.exp(-(p * torch.log(p.clamp_min(1e-12))).sum())
        usage = (counts > 0).float().mean()  # this batch's (no restarts to track)
        return QuantizerOutput(z_q, indices, codebook_loss, commit_loss, perplexity, usage)
