"""The perceptual decoder: a VQ decoder that sees the fidelity stream at every scale."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hdc_lightning.models.drv.layers import check_image
from hdc_lightning.models.vq.blocks import Decoder
from hdc_lightning.registry import register

# How the perceptual output x̃ is decoded from the corrected latent z' (HDCModel's `perceptual`):
#   inject: this module (a VQ-decoder copy, modulated by x̂_lic features at several scales);
#   latent: the paper's latent-only path, x̃ = vq.decode(z') (no extra decoder).
PERCEPTUAL_MODES = ("inject", "latent")


def realism_features(a: torch.Tensor) -> torch.Tensor:
    """Realism levels a ∈ [0, 1], shape [B] → [B, REALISM_FEATURES] (a and a few harmonics)."""
    k = torch.arange(1, 4, device=a.device, dtype=a.dtype) * torch.pi
    return torch.cat([a[:, None], torch.sin(a[:, None] * k), torch.cos(a[:, None] * k)], dim=1)


REALISM_FEATURES = 7
MAX_ANCHOR_SIGMA = 64.0  # pixels; a blur far wider than any token of the 1/16 grid


def gaussian_lowpass(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``x`` [B, C, H, W] (radius ⌈3σ⌉, replicate padding, so a
    constant image stays exactly itself at any size)."""
    r = max(1, math.ceil(3 * sigma))
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def anchor_low_frequencies(x_tilde: torch.Tensor, x_ref: torch.Tensor, sigma: float) -> torch.Tensor:
    """``x_tilde`` with its content below a Gaussian of ``sigma`` px replaced by ``x_ref``'s:
    x̃ + G_σ * (x_ref − x̃). The perceptual decoder keeps the texture it adds; the colours and
    large-scale shading come from the MSE-trained x̂_lic, which the bits pin down best (the
    colour fix of diffusion super-resolution, e.g. StableSR, does the same to its outputs)."""
    if sigma <= 0:
        return x_tilde
    return x_tilde + gaussian_lowpass(x_ref.to(x_tilde.dtype) - x_tilde, sigma)


class SFT(nn.Module):
    """Spatial feature transform ``h + h·γ(f) + β(f)`` (Wang et al., CVPR 2018), zero-initialised
    so that a fresh module is the identity."""

    def __init__(self, cond_ch: int, channels: int, padding_mode: str):
        super().__init__()
        self.hidden = nn.Conv2d(cond_ch, cond_ch, 3, padding=1, padding_mode=padding_mode)
        self.gamma = nn.Conv2d(cond_ch, channels, 3, padding=1, padding_mode=padding_mode)
        self.beta = nn.Conv2d(cond_ch, channels, 3, padding=1, padding_mode=padding_mode)
        for conv in (self.gamma, self.beta):
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)

    def forward(self, h: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        f = F.silu(self.hidden(f))
        return h + h * self.gamma(f) + self.beta(f)


def film(h: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """Per-channel ``h·(1 + scale) + shift``; ``params`` [B, 2C] holds scale then shift."""
    scale, shift = params[:, :, None, None].chunk(2, dim=1)
    return h * (1 + scale) + shift


class RealismEmbedding(nn.Module):
    """Realism level a [B] → one FiLM per injection scale, [B, 2·channels] each.

    The heads are zero-initialised, so a fresh embedding leaves the decoder unchanged; they
    modulate the decoder's own features (not only the condition), so the loss reaches them
    from the first step whatever the SFTs have learnt."""

    def __init__(self, channels: Mapping[int, int], hidden: int):
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(REALISM_FEATURES, hidden), nn.SiLU())
        self.heads = nn.ModuleDict({str(s): nn.Linear(hidden, 2 * c) for s, c in channels.items()})
        for head in self.heads.values():
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)

    def forward(self, a: torch.Tensor) -> dict[int, torch.Tensor]:
        e = self.trunk(realism_features(a))
        return {int(s): head(e) for s, head in self.heads.items()}


class FidelityPyramid(nn.Module):
    """x̂_lic → features at 1/1, 1/2, …, 1/max(scales) (strided convs, SiLU)."""

    def __init__(self, scales: Sequence[int], cond_ch: int, padding_mode: str):
        super().__init__()
        self.scales = tuple(sorted(int(s) for s in scales))
        depth = self.scales[-1].bit_length() - 1
        self.stem = nn.Conv2d(3, cond_ch, 3, padding=1, padding_mode=padding_mode)
        self.down = nn.ModuleList(
            nn.Conv2d(cond_ch, cond_ch, 3, stride=2, padding=1, padding_mode=padding_mode) for _ in range(depth)
        )

    def forward(self, x_hat_lic: torch.Tensor) -> dict[int, torch.Tensor]:
        f = F.silu(self.stem(x_hat_lic * 2 - 1))
        out = {1: f}
        for k, conv in enumerate(self.down):
            f = F.silu(conv(f))
            out[2 ** (k + 1)] = f
        return {s: out[s] for s in self.scales}


LATENT_SCALE = 16  # the LIC latent ŷ is at 1/16 of the (padded) image, the VQ token grid


class LatentPyramid(nn.Module):
    """The LIC latent ŷ (1/16) → features at 1/16, 1/8, …, 1/min(scales) (nearest ×2 + conv, SiLU).

    ŷ holds what the MSE-trained g_s averages away (HiFiC decodes its generator from it), so the
    decoder reads it beside the pixels of x̂_lic."""

    def __init__(self, latent_ch: int, scales: Sequence[int], cond_ch: int, padding_mode: str):
        super().__init__()
        self.scales = tuple(sorted(int(s) for s in scales))
        if self.scales[-1] > LATENT_SCALE:
            raise ValueError(f"latent scales {self.scales} must be at most 1/{LATENT_SCALE}, the LIC latent's")
        depth = LATENT_SCALE.bit_length() - self.scales[0].bit_length()
        self.stem = nn.Conv2d(latent_ch, cond_ch, 3, padding=1, padding_mode=padding_mode)
        self.up = nn.ModuleList(
            nn.Conv2d(cond_ch, cond_ch, 3, padding=1, padding_mode=padding_mode) for _ in range(depth)
        )

    def forward(self, y_hat: torch.Tensor) -> dict[int, torch.Tensor]:
        f = F.silu(self.stem(y_hat))
        out, s = {LATENT_SCALE: f}, LATENT_SCALE
        for conv in self.up:
            f = F.silu(conv(F.interpolate(f, scale_factor=2, mode="nearest")))
            s //= 2
            out[s] = f
        return {s: out[s] for s in self.scales}


@register(
    "model",
    "perceptual_decoder",
    presets={
        "tiny": dict(scales=(8, 4, 2), cond_ch=16, realism=True),
        "small": dict(scales=(8, 4, 2, 1), cond_ch=32, realism=True),
        "paper": dict(scales=(8, 4, 2), cond_ch=128, realism=True),
    },
)
class PerceptualDecoder(nn.Module):
    """x̃ = g_s(post_quant(z'), injected with SFT(x̂_lic features) after the up-levels at 1/s).

    ``g_s``/``post_quant`` have the VQ decoder's shape (``decoder_args``, taken from the VQ
    part) and start as its copy (the recipe loads the VQ stage's decoder into them), so with
    the zero-initialised SFTs this module reproduces the latent-only output exactly and
    training starts from it. The fidelity stream reaches every scale instead of passing
    through the 1/16 latent alone, as in DC-VIC (Iwai et al., 2024)::

        z' ─ post_quant ─ g_s: mid ─ up ─(SFT 1/8)─ up ─(SFT 1/4)─ up ─(SFT 1/2)─ up ─(SFT 1/1)─ out ─ x̃
                                          ▲               ▲               ▲               ▲
        x̂_lic ─ FidelityPyramid ──────── f₈ ──────────── f₄ ──────────── f₂ ──────────── f₁
        realism a ─ MLP(0-init heads) ─ FiLM after each SFT (``realism=True``)

    ``latent_ch > 0`` (HDCModel's ``perceptual_latent``) adds a second zero-initialised SFT per
    scale fed by the LIC latent ŷ (:class:`LatentPyramid`): the decoder then also reads what the
    bits say beyond the MSE decoder's average, and still starts as the output without it.

    ``realism=True`` makes it one decoder for a range of realism levels a ∈ [0, 1] (Agustsson
    et al., "Multi-Realism Image Compression with a Conditional Generator", CVPR 2023): the
    training loss weights LPIPS by a per example, so a = 0 is the MSE-trained output and a = 1
    the most perceptual; the bits do not depend on a. ``a=None`` means 1.

    ``anchor_sigma > 0`` replaces what x̃ holds below a Gaussian of that many pixels by x̂_lic's
    (:func:`anchor_low_frequencies`; no parameters, so any trained decoder can take it): the
    decoder then only adds texture, and cannot shift the colours of large regions (it turned a
    saturated green leaf grey-green, 10 dB below x̂_lic, before). 0 leaves x̃ as decoded.
    """

    def __init__(
        self,
        decoder_args: Mapping[str, Any] | None = None,
        scales: Sequence[int] = (8, 4, 2),
        cond_ch: int = 32,
        realism: bool = False,
        latent_ch: int = 0,
        anchor_sigma: float = 0.0,
    ):
        super().__init__()
        if not 0 <= float(anchor_sigma) <= MAX_ANCHOR_SIGMA:
            raise ValueError(f"anchor_sigma must be in [0, {MAX_ANCHOR_SIGMA:g}] pixels (0: off), got {anchor_sigma}")
        self.anchor_sigma = float(anchor_sigma)
        if decoder_args is None:
            raise ValueError("decoder_args: the VQ decoder's shape (HDCModel passes vq.decoder_args)")
        args = dict(decoder_args)
        self.post_quant = nn.Conv2d(args["z_channels"], args["z_channels"], 1)
        self.g_s = Decoder(**args)
        channels = self.g_s.up_channels()
        bad = [s for s in scales if int(s) not in channels]
        if bad:
            raise ValueError(f"scales {bad} are not up-sampling outputs of the VQ decoder ({sorted(channels)})")
        pm = args.get("padding_mode", "zeros")
        self.scales = tuple(sorted(int(s) for s in scales))
        self.pyramid = FidelityPyramid(self.scales, cond_ch, pm)
        self.sft = nn.ModuleDict({str(s): SFT(cond_ch, channels[s], pm) for s in self.scales})
        self.realism = RealismEmbedding({s: channels[s] for s in self.scales}, 2 * cond_ch) if realism else None
        self.latent_ch = int(latent_ch)
        if self.latent_ch > 0:
            self.latent = LatentPyramid(self.latent_ch, self.scales, cond_ch, pm)
            self.sft_latent = nn.ModuleDict({str(s): SFT(cond_ch, channels[s], pm) for s in self.scales})
        else:
            self.latent = self.sft_latent = None

    @property
    def conditioned(self) -> bool:
        """Whether the output depends on a realism level (``realism=True``)."""
        return self.realism is not None

    def forward(
        self,
        z: torch.Tensor,
        x_hat_lic: torch.Tensor,
        realism: torch.Tensor | float | None = None,
        y_hat: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Corrected latent ``z`` [B, D, h, w] and x̂_lic [B, 3, 16h, 16w] → x̃, about [0, 1];
        ``realism``: a in [0, 1], a number or one per example (ignored unless ``conditioned``);
        ``y_hat``: the LIC latent [B, latent_ch, ≥h, ≥w] (used and required when ``latent_ch > 0``;
        a latent of a larger padded image is cropped to z's grid)."""
        check_image(x_hat_lic, max(self.scales), "x_hat_lic")
        feats = self.pyramid(x_hat_lic)
        latent: dict[int, torch.Tensor] = {}
        if self.latent is not None:
            h, w = z.shape[-2:]
            if (
                y_hat is None
                or y_hat.dim() != 4
                or y_hat.shape[1] != self.latent_ch
                or y_hat.shape[-2] < h
                or y_hat.shape[-1] < w
            ):
                got = None if y_hat is None else tuple(y_hat.shape)
                raise ValueError(f"y_hat must be the LIC latent [B, {self.latent_ch}, >={h}, >={w}], got {got}")
            latent = self.latent(y_hat[..., :h, :w].to(z.dtype))
        films: dict[int, torch.Tensor] = {}
        if self.realism is not None:
            a = torch.as_tensor(1.0 if realism is None else realism, dtype=z.dtype, device=z.device)
            a = a.expand(z.shape[0]) if a.dim() == 0 else a
            films = self.realism(a)

        def inject(h: torch.Tensor, s: int) -> torch.Tensor:
            if s not in feats:
                return h
            h = self.sft[str(s)](h, feats[s])
            if s in latent:
                h = self.sft_latent[str(s)](h, latent[s])
            return film(h, films[s]) if s in films else h

        x_tilde = (self.g_s(self.post_quant(z), inject) + 1) / 2
        return anchor_low_frequencies(x_tilde, x_hat_lic, self.anchor_sigma)
