"""Cosine vector quantiser with dead-code restart (the VQ stream's codebook).

Why it does not collapse:

* lookups compare l2-normalised vectors (cosine similarity), so no code can win every
  lookup by having a large norm, and the codebook and encoder live on the same sphere
  (Yu et al., "Vector-quantized image modeling with improved VQGAN", ICLR 2022);
* optionally the lookup runs in a low-dimensional space (``lookup_dim``: factorised codes,
  same paper), projected back to ``code_dim`` for the decoder;
* a code not chosen for ``restart_after`` training forwards is re-initialised from a
  recent encoder output (as in Jukebox / "dead code" restarts), so every code keeps
  receiving gradients.

Gradients: straight-through estimator ``z + (q - z).detach()``; the encoder learns from
the commitment term ``beta * ||z - sg(q)||²``. The codebook learns either

* ``codebook_update="grad"``: from ``||sg(z) - q||²`` through the optimiser. Adam moves a
  code by about ``lr`` per step, so at lr 2e-4 a 16-dim unit code (components ≈ 0.25)
  needs thousands of steps to follow its cluster; or
* ``codebook_update="ema"``: as spherical k-means with exponential moving averages of the
  count and the sum of the lookup vectors assigned to each code (van den Oord et al.,
  "Neural discrete representation learning", 2017, appendix; Razavi et al., VQ-VAE-2), so
  a code sits on the mean direction of its recent assignments after a few batches. The
  codebook is then not a trainable parameter and ``codebook_loss`` is reported, detached.

Under DDP the code counts (and EMA sums) are all-reduced and restarts are broadcast from
rank 0, so the codebook stays identical on every rank.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


class QuantizerOutput(NamedTuple):
    z_q: torch.Tensor  # [B, code_dim, h, w] quantised latent (straight-through in training)
    indices: torch.Tensor  # [B, h, w] long
    codebook_loss: torch.Tensor  # ||sg(z) - q||², trains the codebook ("grad"; detached under "ema")
    commit_loss: torch.Tensor  # beta * ||z - sg(q)||², trains the encoder
    perplexity: torch.Tensor  # exp(entropy) of this batch's code histogram (all ranks)
    usage: torch.Tensor  # fraction of codes chosen within the last `restart_after` training forwards


def full_precision(t: torch.Tensor) -> torch.Tensor:
    """``t`` in float32, or float64 when it is: lookups never run in half precision (bf16
    similarities tie and flip indices between runs), and a float64 model stays float64 (the
    imported-weights equivalence tests compare in float64)."""
    return t if t.dtype == torch.float64 else t.float()


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class CosineQuantizer(nn.Module):
    def __init__(
        self,
        codebook_size: int,
        code_dim: int,
        lookup_dim: int | None = None,
        beta: float = 0.25,
        restart_after: int = 200,
        pool_size: int = 4096,
        pool_batches: int = 4,
        codebook_update: str = "grad",
        ema_decay: float = 0.99,
    ):
        super().__init__()
        if codebook_size < 2 or codebook_size > 65535:
            raise ValueError(f"codebook_size must be in [2, 65535], got {codebook_size}")
        if codebook_update not in ("grad", "ema"):
            raise ValueError(f"codebook_update must be 'grad' or 'ema', got {codebook_update!r}")
        if not 0.0 < ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in (0, 1), got {ema_decay}")
        self.codebook_size, self.code_dim, self.beta = codebook_size, code_dim, beta
        self.restart_after, self.pool_size = restart_after, pool_size
        dim = lookup_dim or code_dim
        self.proj_in = nn.Conv2d(code_dim, dim, 1) if lookup_dim else nn.Identity()
        self.proj_out = nn.Conv2d(dim, code_dim, 1) if lookup_dim else nn.Identity()
        self.codebook = nn.Embedding(codebook_size, dim)
        nn.init.normal_(self.codebook.weight)
        self.ema, self.ema_decay = codebook_update == "ema", ema_decay
        if self.ema:
            self.codebook.weight.requires_grad_(False)  # set by the averages below (DDP must not wait for it)
            # Saved with the weights so a resumed run continues the same averages.
            self.register_buffer("ema_count", torch.zeros(codebook_size))
            self.register_buffer("ema_sum", torch.zeros(codebook_size, dim))
        # Training forwards since each code was last chosen; training statistics, not weights.
        self.register_buffer("idle", torch.zeros(codebook_size, dtype=torch.long), persistent=False)
        # Normalised encoder outputs of the last `pool_batches` training batches (restart
        # candidates); a plain attribute, so it is neither saved nor broadcast by DDP.
        self._pool: list[torch.Tensor] = []
        self.pool_batches = pool_batches

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # The EMA averages are training statistics of the codebook, not weights: a frozen or
        # Adam-trained codebook ignores them (the hybrid stages load an EMA-trained VQ), and
        # an EMA codebook loaded without them starts new averages from its vectors.
        keys = (prefix + "ema_count", prefix + "ema_sum")
        for key, name in zip(keys, ("ema_count", "ema_sum")):
            if not self.ema:
                state_dict.pop(key, None)
            elif key not in state_dict:
                state_dict[key] = torch.zeros_like(getattr(self, name))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def codes(self) -> torch.Tensor:
        """The normalised codebook ``[K, lookup_dim]`` (float32, or float64 in a float64 model)."""
        return F.normalize(full_precision(self.codebook.weight), dim=1)

    def embed(self, indices: torch.Tensor) -> torch.Tensor:
        """Indices ``[B,h,w]`` → quantised latent ``[B,code_dim,h,w]``."""
        if indices.dtype != torch.long or indices.dim() != 3:
            raise ValueError(f"indices must be a LongTensor [B,h,w], got {indices.dtype} {tuple(indices.shape)}")
        if int(indices.min()) < 0 or int(indices.max()) >= self.codebook_size:
            raise ValueError(f"indices out of range [0, {self.codebook_size})")
        q = F.embedding(indices, self.codes()).permute(0, 3, 1, 2)
        return self.proj_out(q)

    def unquantised(self, z_e: torch.Tensor) -> torch.Tensor:
        """What ``z_q`` would be with an unlimited codebook: the normalised lookup vector projected
        back, ``[B,code_dim,h,w]``. Decoding it separates what the codebook loses from what the
        encoder and decoder lose (docs/vq.md)."""
        with torch.autocast(device_type=z_e.device.type, enabled=False):
            return self.proj_out(self.lookup(z_e)[0].permute(0, 3, 1, 2))

    def lookup(self, z_e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised lookup vectors ``[B,h,w,d]`` and their nearest (max cosine) codes ``[B,h,w]``."""
        with torch.autocast(device_type=z_e.device.type, enabled=False):
            z = F.normalize(self.proj_in(full_precision(z_e)).permute(0, 2, 3, 1), dim=-1)
            # float32 lookups: bf16 similarities would tie and flip indices between runs.
            indices = (z.detach() @ self.codes().detach().t()).argmax(dim=-1)
        return z, indices

    def forward(self, z_e: torch.Tensor) -> QuantizerOutput:
        if self.training:
            self._restart_dead_codes()
        with torch.autocast(device_type=z_e.device.type, enabled=False):
            z, indices = self.lookup(z_e)
            q = F.embedding(indices, self.codes())
            codebook_loss = F.mse_loss(q, z.detach())
            if self.ema:
                codebook_loss = codebook_loss.detach()
            commit_loss = self.beta * F.mse_loss(z, q.detach())
            z_st = z + (q - z).detach()
            z_q = self.proj_out(z_st.permute(0, 3, 1, 2))
        counts = torch.bincount(indices.flatten(), minlength=self.codebook_size).float()
        if self.training:
            counts = self._track(counts, z.detach().flatten(0, 2), indices.flatten())
        p = counts / counts.sum().clamp_min(1.0)
        perplexity = torch.exp(-(p * torch.log(p.clamp_min(1e-12))).sum())
        usage = (self.idle < self.restart_after).float().mean() if self.training else (counts > 0).float().mean()
        return QuantizerOutput(z_q, indices, codebook_loss, commit_loss, perplexity, usage)

    # ---- usage tracking and restarts (training only) -------------------------------
    @torch.no_grad()
    def _track(self, counts: torch.Tensor, z: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        sums = torch.zeros_like(self.ema_sum).index_add_(0, indices, z) if self.ema else None
        if _distributed():
            dist.all_reduce(counts)
            if sums is not None:
                dist.all_reduce(sums)
        self.idle += 1
        self.idle[counts > 0] = 0
        if sums is not None:
            self._ema_update(counts, sums)
        self._push(z)
        return counts

    @torch.no_grad()
    def _ema_update(self, counts: torch.Tensor, sums: torch.Tensor) -> None:
        self.ema_count.mul_(self.ema_decay).add_(counts, alpha=1 - self.ema_decay)
        self.ema_sum.mul_(self.ema_decay).add_(sums, alpha=1 - self.ema_decay)
        # The ratio is the decayed mean of the assigned unit vectors (no bias correction
        # needed); only its direction matters, codes() normalises. A code that has never
        # been chosen since its (re)start keeps its vector.
        seen = self.ema_count > 1e-8
        self.codebook.weight.data[seen] = (self.ema_sum[seen] / self.ema_count[seen, None]).to(
            self.codebook.weight.dtype
        )

    @torch.no_grad()
    def _push(self, z: torch.Tensor) -> None:
        # Only the last few batches: restarts must come from what the encoder produces *now*.
        take = z[torch.randperm(z.shape[0], device=z.device)[: self.pool_size // self.pool_batches]].float()
        self._pool.append(take)
        del self._pool[: -self.pool_batches]

    @torch.no_grad()
    def _restart_dead_codes(self) -> None:
        dead = (self.idle >= self.restart_after).nonzero().flatten()
        # Same decision on every rank (`idle` is built from all-reduced counts), so the
        # broadcast below is entered by all ranks or by none.
        if dead.numel() == 0:
            return
        weight = self.codebook.weight
        if self._pool:
            pool = torch.cat(self._pool).to(weight.device)
            # k-means++-like: prefer encoder outputs the current codes quantise worst.
            error = 1.0 - (pool @ self.codes().t()).max(dim=1).values
            pick = torch.multinomial(error.clamp_min(0) + 1e-6, dead.numel(), replacement=pool.shape[0] < dead.numel())
            fresh = pool[pick] + 0.01 * torch.randn_like(pool[pick])
            weight.data[dead] = fresh.to(weight.dtype)
            if self.ema:  # a restarted code starts new averages from its first assignments
                self.ema_count[dead] = 0.0
                self.ema_sum[dead] = 0.0
        if _distributed():
            dist.broadcast(weight.data, src=0)
        self.idle[dead] = 0
