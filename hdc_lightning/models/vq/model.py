"""The VQ stream: a VQGAN-class autoencoder with a cosine codebook and a learned index prior.

Esser et al., "Taming Transformers for High-Resolution Image Synthesis", CVPR 2021
(VQGAN); codebook tricks from Yu et al., ICLR 2022 (l2-normalised, optionally factorised
codes). In HDCompression (Lu et al. 2025) its index map is the generative stream; only a
subset of it is transmitted and the rest is predicted.

::

    x ─► 2x-1 ─► g_a ─► z_e ─► quantiser ──► z_q ─► g_s ─► (·+1)/2 ─► x_hat
         [B,3,H,W]    [B,D,H/16,W/16]  │ indices [B,H/16,W/16] ─► prior (rANS bytes)
                                        └──── embed(indices) = z_q
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from hdc_lightning.models.vq.blocks import Decoder, Encoder
from hdc_lightning.models.vq.index_coding import IndexCoder, IndexPrior
from hdc_lightning.models.vq.l2_quantizer import L2Quantizer
from hdc_lightning.models.vq.quantizer import CosineQuantizer
from hdc_lightning.registry import register


class VQOutput(NamedTuple):
    x_hat: torch.Tensor  # [B,3,H,W] reconstruction, about [0, 1] (not clamped, for the losses)
    indices: torch.Tensor  # [B,h,w] long, h = H/16
    z_q: torch.Tensor  # [B,code_dim,h,w] quantised latent (straight-through)
    z_e: torch.Tensor  # [B,code_dim,h,w] encoder output before quantisation
    codebook_loss: torch.Tensor  # trains the codebook
    commit_loss: torch.Tensor  # trains the encoder (beta included)
    prior_loss: torch.Tensor  # cross-entropy of the indices under the prior (nats), trains prior.logits
    perplexity: torch.Tensor
    usage: torch.Tensor  # fraction of codes used recently (training) / in this batch (eval)


# Both presets look codes up in a low-dimensional space (factorised codes, ViT-VQGAN uses 32):
# on toy runs it keeps far more of the codebook alive than a full-dimensional lookup.
TINY = dict(
    ch=32, ch_mult=(1, 1, 2, 2, 4), num_res_blocks=1, codebook_size=128, code_dim=32, lookup_dim=8, restart_after=50
)
# `small`: the CPU-trainable preset of the shipped model: the paper's f16 grid, K=512 (9 bits
# a token before masking, 4x the tiny codebook) and replicate padding (see blocks.py).
SMALL = dict(
    ch=32,
    ch_mult=(1, 1, 2, 2, 4),
    num_res_blocks=1,
    codebook_size=512,
    code_dim=64,
    lookup_dim=16,
    restart_after=50,
    padding_mode="replicate",
)
PAPER = dict(
    ch=128,
    ch_mult=(1, 1, 2, 2, 4),
    num_res_blocks=2,
    codebook_size=1024,
    code_dim=256,
    lookup_dim=32,
    restart_after=200,
)
# Published VQGANs whose weights `hdc import` converts (docs/pretrained.md): the paper's conv
# stack with taming's GroupNorm(32) everywhere. Taming: plain L2 lookup after quant_conv
# (quantizer.proj_in), post_quant_conv = post_quant. LlamaGen VQ-16: l2-normalised 8-dim codes,
# quant_conv/post_quant_conv = quantizer.proj_in/proj_out (post_quant imported as identity).
F16 = dict(ch=128, ch_mult=(1, 1, 2, 2, 4), num_res_blocks=2, code_dim=256, norm_groups=32)
TAMING_F16_1024 = dict(F16, codebook_size=1024, quantizer="l2")
TAMING_F16_16384 = dict(F16, codebook_size=16384, quantizer="l2")
LLAMAGEN_VQ16 = dict(F16, codebook_size=16384, lookup_dim=8)
PRESETS = {
    "tiny": TINY,
    "small": SMALL,
    "paper": PAPER,
    "taming-f16-1024": TAMING_F16_1024,
    "taming-f16-16384": TAMING_F16_16384,
    "llamagen-vq16": LLAMAGEN_VQ16,
}
QUANTIZERS = ("cosine", "l2")


@register("model", "vq", presets=PRESETS)
class VQModel(nn.Module):
    """VQGAN encoder/decoder around a quantiser; see the module docstring.

    ``quantizer``: "cosine" (:class:`CosineQuantizer`, what we train) or "l2"
    (:class:`L2Quantizer`, taming's, for imported weights; no ``lookup_dim``, no EMA).
    ``norm_groups``: GroupNorm groups of every block (None: up to 32, see ``blocks.norm``).
    """

    def __init__(
        self,
        ch: int = 128,
        ch_mult: Sequence[int] = (1, 1, 2, 2, 4),
        num_res_blocks: int = 2,
        codebook_size: int = 1024,
        code_dim: int = 256,
        lookup_dim: int | None = None,
        beta: float = 0.25,
        restart_after: int = 200,
        attn_lowest: bool = True,
        padding_mode: str = "zeros",
        codebook_update: str = "grad",
        ema_decay: float = 0.99,
        quantizer: str = "cosine",
        norm_groups: int | None = None,
    ):
        super().__init__()
        if quantizer not in QUANTIZERS:
            raise ValueError(f"quantizer must be one of {', '.join(QUANTIZERS)}, got {quantizer!r}")
        if quantizer == "l2" and (lookup_dim or codebook_update != "grad"):
            raise ValueError("quantizer 'l2' takes no lookup_dim and learns its codebook by gradient only")
        ch_mult = tuple(int(m) for m in ch_mult)
        self.codebook_size, self.code_dim = codebook_size, code_dim
        self.downsample = 2 ** (len(ch_mult) - 1)
        self.g_a = Encoder(ch, ch_mult, num_res_blocks, code_dim, attn_lowest, padding_mode, norm_groups)
        self.quantizer: CosineQuantizer | L2Quantizer
        if quantizer == "l2":
            self.quantizer = L2Quantizer(codebook_size, code_dim, beta=beta)
        else:
            self.quantizer = CosineQuantizer(
                codebook_size,
                code_dim,
                lookup_dim,
                beta,
                restart_after,
                codebook_update=codebook_update,
                ema_decay=ema_decay,
            )
        self.post_quant = nn.Conv2d(code_dim, code_dim, 1)
        # What a second decoder of the same shape needs (the hybrid's perceptual decoder).
        self.decoder_args = dict(
            ch=ch, ch_mult=ch_mult, num_res_blocks=num_res_blocks, z_channels=code_dim,
            attn_lowest=attn_lowest, padding_mode=padding_mode, norm_groups=norm_groups,
        )  # fmt: skip
        self.g_s = Decoder(**self.decoder_args)
        self.prior = IndexPrior(codebook_size)

    @property
    def last_layer(self) -> torch.Tensor:
        """Weight of the decoder's last conv (for the adaptive GAN weight)."""
        return self.g_s.conv_out.weight

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected images [B,3,H,W], got {tuple(x.shape)}")
        if x.shape[-2] % self.downsample or x.shape[-1] % self.downsample:
            raise ValueError(f"image size {tuple(x.shape[-2:])} must be a multiple of {self.downsample} (pad first)")

    def forward(self, x: torch.Tensor) -> VQOutput:
        self._check(x)
        z_e = self.g_a(x * 2 - 1)
        q = self.quantizer(z_e)
        x_hat = self.decode(q.z_q)
        prior_loss = self.prior.loss(q.indices)
        return VQOutput(x_hat, q.indices, q.z_q, z_e, q.codebook_loss, q.commit_loss, prior_loss, q.perplexity, q.usage)

    # ---- what the hybrid codec uses ----------------------------------------------------
    def encode_indices(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``[B,3,H,W]`` in [0,1] → index map ``[B,H/16,W/16]``."""
        self._check(x)
        return self.quantizer.lookup(self.g_a(x * 2 - 1))[1]

    def embed(self, indices: torch.Tensor) -> torch.Tensor:
        """Index map ``[B,h,w]`` → quantised latent ``z_q`` ``[B,code_dim,h,w]``."""
        return self.quantizer.embed(indices)

    def decode(self, z_q: torch.Tensor) -> torch.Tensor:
        """Quantised (or corrected) latent → image, about [0, 1] (clamp before saving)."""
        return (self.g_s(self.post_quant(z_q)) + 1) / 2

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        return self.decode(self.embed(indices))

    def update(self, force: bool = False) -> bool:
        """Rebuild the prior's integer CDF table if its logits changed (before entropy coding)."""
        return self.prior.update(force)

    def index_coder(self, checksum: bool = True) -> IndexCoder:
        """rANS coder of index maps under this model's stored prior table."""
        return self.prior.coder(checksum)
