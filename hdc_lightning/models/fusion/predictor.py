"""Index predictor T: fills in the VQ indices that were not transmitted (MaskGIT-style)."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from hdc_lightning.models.drv.layers import FiLM, GridEncoder, check_image
from hdc_lightning.registry import register


class PredictorOutput(NamedTuple):
    logits: torch.Tensor  # [B, K, h, w] over the codebook at every position


def sincos_2d(h: int, w: int, dim: int, device=None) -> torch.Tensor:
    """Fixed 2-D sine/cosine positions [h*w, dim] (rows in the first half, columns in the second).

    Fixed rather than learned so that one model serves any grid size (any image size).
    """
    q = dim // 4
    omega = 1.0 / 10000 ** (torch.arange(q, dtype=torch.float32, device=device) / q)
    ys = torch.arange(h, dtype=torch.float32, device=device)[:, None] * omega
    xs = torch.arange(w, dtype=torch.float32, device=device)[:, None] * omega
    pe_y = torch.cat([ys.sin(), ys.cos()], 1)[:, None, :].expand(h, w, 2 * q)
    pe_x = torch.cat([xs.sin(), xs.cos()], 1)[None, :, :].expand(h, w, 2 * q)
    return torch.cat([pe_y, pe_x], 2).reshape(h * w, 4 * q)


def attend(mha: nn.MultiheadAttention, query: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """What ``mha(query, source, source)`` computes (its weights, no mask, no dropout), through
    ``F.scaled_dot_product_attention``: its kernels never hold the tokens × tokens matrix of
    every head, which torch's fused MultiheadAttention does (4 GB at 16k tokens, a 4-Mpx image)."""
    heads, dim = mha.num_heads, mha.embed_dim
    w_q, w_k, w_v = mha.in_proj_weight.chunk(3)
    b_q, b_k, b_v = mha.in_proj_bias.chunk(3)

    def split(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return F.linear(x, w, b).unflatten(-1, (heads, dim // heads)).transpose(1, 2)  # [B, heads, N, d]

    out = F.scaled_dot_product_attention(split(query, w_q, b_q), split(source, w_k, b_k), split(source, w_v, b_v))
    return mha.out_proj(out.transpose(1, 2).flatten(2))


class PredictorBlock(nn.Module):
    """Self-attention → cross-attention to x̂_lic features → MLP, each after a FiLM-modulated norm."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, drv_dim: int):
        super().__init__()
        self.norms = nn.ModuleList([nn.LayerNorm(dim) for _ in range(3)])
        self.films = nn.ModuleList([FiLM(drv_dim, dim) for _ in range(3)])
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.cross = nn.MultiheadAttention(dim, heads, batch_first=True)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, h: torch.Tensor, memory: torch.Tensor, v: torch.Tensor | None) -> torch.Tensor:
        a = self.films[0](self.norms[0](h), v)
        h = h + attend(self.attn, a, a)
        c = self.films[1](self.norms[1](h), v)
        h = h + attend(self.cross, c, memory)
        m = self.films[2](self.norms[2](h), v)
        return h + self.mlp(m)


@register(
    "model",
    "predictor",
    presets={
        "tiny": dict(codebook_size=64, dim=64, depth=2, heads=4, cond_ch=32, drv_dim=32),
        "small": dict(codebook_size=512, dim=128, depth=3, heads=4, cond_ch=48, drv_dim=64),
        "paper": dict(codebook_size=1024, dim=512, depth=8, heads=8, cond_ch=192, drv_dim=256),
    },
)
class IndexPredictor(nn.Module):
    """Bidirectional transformer predicting every VQ index from the sent ones and x̂_lic.

    Sent positions carry their index embedding, the others a learned [MASK] embedding
    (id ``codebook_size``); 2-D sine/cosine positions are added to tokens and to the
    condition features, and each token also gets a linear map of its own cell's
    condition feature (so cross-attention only has to gather context). Each block is
    FiLM-modulated by the DRV v_P (zero-initialised, so v_P=None or ``drv_dim=0`` means
    plain blocks)::

        indices, sent mask ─ embed ([MASK] where not sent) + pos ─(+)─┐
        x̂_lic ─ conv encoder (1/16) + pos ─ memory ─ linear ────┘   │ (same-cell local path)
                                              └── cross-attn keys ─┤
        v_P ─────────────────────────────────────── FiLM ─────────┴ [self-attn → cross-attn → MLP] × depth ─ logits

    ``decode`` is deterministic: argmax (``steps=1``) or a fixed cosine schedule of
    refinement steps that commits the most confident predictions first (ties broken by
    raster position); sent indices are never changed.

    Citation: Lu et al., "HDCompression", arXiv 2502.07160 (2025); Chang et al.,
    "MaskGIT", CVPR 2022; HybridFlow, ACM MM 2024.
    """

    def __init__(
        self,
        codebook_size: int = 1024,
        dim: int = 512,
        depth: int = 8,
        heads: int = 8,
        mlp_ratio: float = 4.0,
        cond_ch: int = 192,
        drv_dim: int = 256,
        steps: int = 1,
    ):
        super().__init__()
        if dim % 4 or dim % heads:
            raise ValueError(f"dim ({dim}) must be a multiple of 4 and of heads ({heads})")
        self.codebook_size, self.mask_id, self.dim, self.steps = codebook_size, codebook_size, dim, steps
        self.tok = nn.Embedding(codebook_size + 1, dim)
        self.cond = GridEncoder(cond_ch, dim)
        self.mem_norm = nn.LayerNorm(dim)
        self.local = nn.Linear(dim, dim)
        self.blocks = nn.ModuleList([PredictorBlock(dim, heads, mlp_ratio, drv_dim) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, codebook_size)

    def encode_condition(self, x_hat_lic: torch.Tensor) -> torch.Tensor:
        """Cross-attention memory [B, h*w, dim] from x̂_lic; computed once per image."""
        check_image(x_hat_lic, 16, "x_hat_lic")
        f = self.cond(x_hat_lic)
        b, c, h, w = f.shape
        return self.mem_norm(f.flatten(2).transpose(1, 2) + sincos_2d(h, w, c, f.device).to(f.dtype))

    def predict(self, tokens: torch.Tensor, memory: torch.Tensor, v_P: torch.Tensor | None = None) -> torch.Tensor:
        """Logits [B, K, h, w] for token ids [B, h, w] (``mask_id`` where unknown)."""
        b, h, w = tokens.shape
        if memory.shape[1] != h * w:
            raise ValueError(f"token grid {h}x{w} does not match the condition grid ({memory.shape[1]} cells)")
        # The condition feature of the same cell is also added to the input (an aligned local
        # path): cross-attention then only has to fetch context, not find its own cell.
        pos = sincos_2d(h, w, self.dim, tokens.device).to(memory.dtype)
        x = self.tok(tokens.flatten(1)) + pos + self.local(memory)
        for block in self.blocks:
            x = block(x, memory, v_P)
        return self.head(self.norm(x)).transpose(1, 2).reshape(b, self.codebook_size, h, w)

    def _tokens(self, indices: torch.Tensor, sent_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if indices.dim() != 3:
            raise ValueError(f"indices must be [B, h, w], got {tuple(indices.shape)}")
        sent = sent_mask.to(torch.bool).expand_as(indices)
        if sent.any():
            sel = indices[sent]
            if sel.min() < 0 or sel.max() >= self.codebook_size:
                raise ValueError(f"sent indices must lie in [0, {self.codebook_size})")
        indices = indices.long()
        return torch.where(sent, indices, torch.full_like(indices, self.mask_id)), sent

    def forward(
        self, indices: torch.Tensor, sent_mask: torch.Tensor, x_hat_lic: torch.Tensor, v_P: torch.Tensor | None = None
    ) -> PredictorOutput:
        """Training forward: ``indices`` [B, h, w] (only sent positions are read), mask [h, w] or [B, h, w]."""
        tokens, _ = self._tokens(indices, sent_mask)
        return PredictorOutput(self.predict(tokens, self.encode_condition(x_hat_lic), v_P))

    @torch.no_grad()
    def decode(
        self,
        indices: torch.Tensor,
        sent_mask: torch.Tensor,
        x_hat_lic: torch.Tensor,
        v_P: torch.Tensor | None = None,
        steps: int | None = None,
    ) -> torch.Tensor:
        """The completed index map d̂ [B, h, w]: deterministic, sent indices kept as they are."""
        steps = self.steps if steps is None else steps
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        tokens, sent = self._tokens(indices, sent_mask)
        memory = self.encode_condition(x_hat_lic)
        known = sent.clone()
        b, h, w = tokens.shape
        n_missing = (~sent).flatten(1).sum(1).tolist()
        pos = torch.arange(h * w, device=tokens.device).expand(b, -1)
        for s in range(steps):
            logits = self.predict(tokens, memory, v_P)
            conf, pred = logits.float().softmax(1).max(1)
            if s == steps - 1:
                tokens = torch.where(known, tokens, pred)
                break
            # Cosine schedule: after step s, floor(n·cos(π/2·(s+1)/S)) positions stay masked.
            keep_masked = [math.floor(n * math.cos(math.pi / 2 * (s + 1) / steps)) for n in n_missing]
            still = (~known).flatten(1).sum(1)
            n_commit = (still - torch.tensor(keep_masked, device=still.device)).clamp(min=0)
            score = torch.where(known, torch.full_like(conf, -math.inf), conf).flatten(1)
            order = torch.sort(score, dim=1, descending=True, stable=True).indices  # ties → lower position first
            rank = torch.empty_like(order).scatter_(1, order, pos)
            commit = (rank < n_commit[:, None]).view(b, h, w) & ~known
            tokens = torch.where(commit, pred, tokens)
            known = known | commit
        return torch.where(sent, indices.long(), tokens)


def masked_cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, sent_mask: torch.Tensor, label_smoothing: float = 0.0
) -> torch.Tensor:
    """Mean cross-entropy over the positions that were NOT sent (what T must predict)."""
    missing = ~sent_mask.to(torch.bool).expand_as(target)
    ce = F.cross_entropy(logits, target.long(), reduction="none", label_smoothing=label_smoothing)
    if not missing.any():
        return ce.sum() * 0.0  # keeps the graph; nothing to predict
    return ce[missing].mean()


@torch.no_grad()
def masked_accuracy(logits: torch.Tensor, target: torch.Tensor, sent_mask: torch.Tensor) -> torch.Tensor:
    """Top-1 accuracy on the positions that were not sent (NaN when every position was sent)."""
    missing = ~sent_mask.to(torch.bool).expand_as(target)
    hit = (logits.argmax(1) == target)[missing]
    return hit.float().mean() if hit.numel() else torch.tensor(float("nan"), device=logits.device)
