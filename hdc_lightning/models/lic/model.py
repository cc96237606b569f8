"""The LIC model: HDCompression's fidelity stream (base reconstruction x̂)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import NamedTuple

import torch
import torch.nn.functional as F
from compressai.models import CompressionModel
from compressai.models.base import SCALES_MIN, get_scale_table
from torch import Tensor

from hdc_lightning.models.lic.coder import SharedDecoder, SharedEncoder, shared_stream
from hdc_lightning.models.lic.context import build_latent_codec
from hdc_lightning.models.lic.exact import exact_latent_codec
from hdc_lightning.models.lic.transforms import analysis, synthesis
from hdc_lightning.registry import register

PAD_MULTIPLE = 64  # y at H/16, z at H/64; the checkerboard also needs even y sizes


class LICOutput(NamedTuple):
    x_hat: Tensor  # [B,3,H,W], same size as the input
    likelihoods: dict[str, Tensor]  # {"y": ..., "z": ...}
    y_hat: Tensor  # quantised latent [B,M,Hp/16,Wp/16] — what later stages condition on


class LICCompressed(NamedTuple):
    strings: list[list[bytes]]  # one entry per stream (LIC.stream_names(): one), each a list over the batch
    shape: tuple[int, int]  # image (H, W) before padding
    y_hat: Tensor  # the quantised latent the decoder will reproduce exactly (CPU, float32)


class LICDecoded(NamedTuple):
    x_hat: Tensor  # [B,3,H,W], cropped to the original size
    y_hat: Tensor  # [B,M,Hp/16,Wp/16] (CPU, float32)


def padded_size(h: int, w: int, multiple: int = PAD_MULTIPLE) -> tuple[int, int]:
    return math.ceil(h / multiple) * multiple, math.ceil(w / multiple) * multiple


def pad_image(x: Tensor, multiple: int = PAD_MULTIPLE) -> Tensor:
    """Replicate-pad bottom/right to a multiple of ``multiple`` (no-op when aligned)."""
    h, w = x.shape[-2:]
    hp, wp = padded_size(h, w, multiple)
    if (hp, wp) == (h, w):
        return x
    return F.pad(x, (0, wp - w, 0, hp - h), mode="replicate")


@contextmanager
def entropy_side() -> Iterator[None]:
    """No autocast while the entropy side runs: its fixed-point nets need float64 as given."""
    with torch.autocast("cpu", enabled=False):
        yield


def estimated_bits(likelihoods: dict[str, Tensor]) -> Tensor:
    """Bits per image [B] that an ideal entropy coder would spend, from the likelihoods."""
    return sum((-torch.log2(lk)).flatten(1).sum(1) for lk in likelihoods.values())


@register(
    "model",
    "lic",
    presets={
        "tiny": dict(N=32, M=64, Nh=32, groups=(16, 48), blocks=1, attention=False, ctx_hidden=(48, 32)),
        "small": dict(N=64, M=128, Nh=64, groups=(16, 32, 80), blocks=1, attention=False, ctx_hidden=(96, 64)),
        "paper": dict(
            N=192, M=320, Nh=192, groups=(16, 16, 32, 64, 192), blocks=3, attention=True, ctx_hidden=(224, 128)
        ),
    },
)
class LIC(CompressionModel):
    """ELIC-class learned image codec with a hyperprior and space-channel context.

    Transforms after Cheng et al. 2020 / He et al. 2022 (residual bottleneck blocks and
    attention); entropy model: scale hyperprior (Ballé et al., ICLR 2018) with uneven
    channel groups (Minnen & Singh, ICIP 2020; He et al., "ELIC: Efficient Learned Image
    Compression with Unevenly Grouped Space-Channel Contextual Adaptive Coding",
    CVPR 2022) and a checkerboard spatial context (He et al., CVPR 2021). Entropy models
    and the rANS coder are compressai's.

    ::

              ┌─────┐  y   ┌─────┐  z   ┌───┐ z_hat ┌─────┐ params
        x ─►──┤ g_a ├──►─┬─┤ h_a ├──►───┤ Q ├──►────┤ h_s ├───►──┐
              └─────┘    │ └─────┘      └───┘  EB   └─────┘      │
                         │                                       ▼
                         │   groups y0..yK-1, each: g_ch(y_hat<k), g_sp(anchors)
                         │          ┌────────────┐              │
                         └────►─────┤ Q (means)  ├──► y_hat ◄────┘  GC (means, scales)
                                    └────────────┘     │
                                                 ┌─────┴─┐
                                                 │  g_s  ├──►── x_hat
                                                 └───────┘

    Inputs are replicate-padded to a multiple of 64 and outputs cropped back.
    ``compress``/``decompress`` run the whole entropy side (h_a, h_s, contexts,
    parameter nets, coder) on the CPU in exact fixed-point arithmetic
    (:mod:`~hdc_lightning.models.lic.exact`), so encoder and decoder compute the same
    table indices and means on any CPU, thread count or torch kernel set; the CDF tables
    are state stored with the weights. g_a/g_s run wherever the model lives (they never
    feed the coder's probabilities). All latents of an image go into one rANS stream
    (see :mod:`~hdc_lightning.models.lic.coder`).

    Args:
        N: channels of g_a/g_s.  M: channels of y.  Nh: channels of z.
        groups: channel-group sizes of y (sum = M), coded in order.
        blocks: residual bottleneck blocks per stage.  attention: use attention blocks.
        ctx_hidden: the two hidden widths of each channel-context net.
        scale_levels, scale_max: the Gaussian scale table ``update()`` builds CDFs for
            (log-spaced from 0.11). The coder rounds each predicted scale up to the next
            table entry; 512 levels up to 64 keep real bits within ~0.6 % of the
            estimate, where compressai's default 64 levels up to 256 cost ~3 %.
    """

    def __init__(
        self,
        N: int = 192,
        M: int = 320,
        Nh: int = 192,
        groups: Sequence[int] = (16, 16, 32, 64, 192),
        blocks: int = 3,
        attention: bool = True,
        ctx_hidden: Sequence[int] = (224, 128),
        scale_levels: int = 512,
        scale_max: float = 64.0,
    ):
        super().__init__()
        groups = [int(g) for g in groups]
        if sum(groups) != M or any(g <= 0 for g in groups):
            raise ValueError(f"groups {groups} must be positive and sum to M={M}")
        self.N, self.M, self.Nh, self.groups = N, M, Nh, groups
        self.g_a = analysis(N, M, blocks, attention)
        self.g_s = synthesis(N, M, blocks, attention)
        self.latent_codec = build_latent_codec(M, Nh, groups, ctx_hidden)
        self.scale_levels, self.scale_max = int(scale_levels), float(scale_max)

    def update(self, scale_table: Tensor | None = None, force: bool = False, update_quantiles: bool = False) -> bool:
        """Build the CDF tables (entropy bottleneck + Gaussian scale table) for coding."""
        if scale_table is None:
            scale_table = get_scale_table(SCALES_MIN, self.scale_max, self.scale_levels)
        return super().update(scale_table=scale_table, force=force, update_quantiles=update_quantiles)

    # ---- training ---------------------------------------------------------------------
    def forward(self, x: Tensor) -> LICOutput:
        h, w = x.shape[-2:]
        y = self.g_a(pad_image(x))
        out = self.latent_codec(y)
        x_hat = self.g_s(out["y_hat"])[..., :h, :w]
        return LICOutput(x_hat, out["likelihoods"], out["y_hat"])

    # ---- coding -----------------------------------------------------------------------
    def stream_names(self) -> list[str]:
        """Names of the strings ``compress`` returns: one rANS stream holds z and all of y."""
        return ["yz"]

    def _exact_latent_codec(self):
        # Built from the current weights at every call: validation codes between optimiser steps.
        return exact_latent_codec(self.latent_codec)

    def _latent_shapes(self, h: int, w: int) -> dict:
        hp, wp = padded_size(h, w)
        hy, wy = hp // 16, wp // 16
        return {"y": [(g, hy, wy) for g in self.groups], "hyper": (hp // 64, wp // 64)}

    def symbols_per_stream(self, h: int, w: int) -> list[int]:
        """How many symbols each stream codes (per image), in ``stream_names`` order."""
        hp, wp = padded_size(h, w)
        return [self.M * (hp // 16) * (wp // 16) + self.Nh * (hp // 64) * (wp // 64)]

    @torch.no_grad()
    def compress(self, x: Tensor) -> LICCompressed:
        """Code each image of the batch into one rANS stream (``strings[0][i]`` for image i)."""
        h, w = x.shape[-2:]
        p = next(self.g_a.parameters())
        y = self.g_a(pad_image(x.to(device=p.device, dtype=p.dtype))).to(device="cpu", dtype=torch.float64)
        lc = self._exact_latent_codec()
        streams, y_hats = [], []
        for i in range(y.shape[0]):
            coder = SharedEncoder()
            with entropy_side(), shared_stream(lc, coder):
                y_hats.append(lc.compress(y[i : i + 1])["y_hat"])
            streams.append(coder.flush())
        return LICCompressed([streams], (h, w), torch.cat(y_hats).float())

    @torch.no_grad()
    def decompress(self, strings: list[list[bytes]], shape: Sequence[int]) -> LICDecoded:
        h, w = int(shape[0]), int(shape[1])
        if len(strings) != len(self.stream_names()):
            raise ValueError(f"expected {len(self.stream_names())} streams, got {len(strings)}")
        lc = self._exact_latent_codec()
        # compressai's decompress walks the same parts as compress: one (ignored) string each
        placeholders = [[b""]] * (2 * len(self.groups) + 1)
        y_hats = []
        for stream in strings[0]:
            with entropy_side(), shared_stream(lc, SharedDecoder(bytes(stream))):
                y_hats.append(lc.decompress(placeholders, self._latent_shapes(h, w))["y_hat"])
        y_hat = torch.cat(y_hats).float()
        p = next(self.g_s.parameters())
        x_hat = self.g_s(y_hat.to(device=p.device, dtype=p.dtype))[..., :h, :w]
        return LICDecoded(x_hat, y_hat)
