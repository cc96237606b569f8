"""MLIC++ as a LIC stream of ours: its transforms and multi-reference entropy model, our coder.

Jiang & Wang, "MLIC++: Linear Complexity Multi-Reference Entropy Modeling for Learned Image
Compression", ICML 2023 workshop / arXiv 2307.15421; code and weights at
``JiangWeibeta/MLIC`` (Apache-2.0). ``hdc import mlicpp`` loads its published checkpoints
into this model (docs/pretrained.md).

::

          ┌─────┐ y  ┌─────┐ z  ┌────┐ z_hat ┌─────┐ hyper (scales seed, means seed)
    x ─►──┤ g_a ├─►┬─┤ h_a ├─►──┤ EB ├──►────┤ h_s ├──►──────────────┐
          └─────┘  │ └─────┘    └────┘       └─────┘                 │
                   │  slices y0..y9 (M/10 channels each), one after another:
                   │   anchors:     EP_a(global inter, channel ctx, hyper) → GC → + LRP
                   │   non-anchors: EP_n(local, global intra, inter, channel, hyper) → GC → + LRP
                   └──────────────────────────────────► y_hat ─► g_s ─► x_hat

Same contract as :class:`~hdc_lightning.models.lic.LIC`: ``forward`` → x_hat, likelihoods
{y, z}, y_hat; ``compress``/``decompress`` put z and every slice into one rANS stream, with
the whole entropy side (h_s, the contexts, the parameter nets and LRP) in exact fixed point
(:mod:`~hdc_lightning.models.mlicpp.ops`), so a file decodes alike on every machine. The
CDF tables and the fixed-point tables are built by ``update()`` and stored with the weights.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from compressai.entropy_models import EntropyBottleneck, GaussianConditional
from compressai.models import CompressionModel
from compressai.models.base import SCALES_MIN, get_scale_table
from compressai.ops import quantize_ste
from torch import Tensor, nn

import hdc_lightning.models.mlicpp.checkerboard as ckbd
from hdc_lightning.models.lic.coder import SharedDecoder, SharedEncoder, shared_stream
from hdc_lightning.models.lic.model import (
    LICCompressed,
    LICDecoded,
    LICOutput,
    entropy_side,
    pad_image,
    padded_size,
)
from hdc_lightning.models.mlicpp.context import (
    ChannelContext,
    EntropyParameters,
    GlobalInterContext,
    GlobalIntraContext,
    LocalContext,
    ResidualPrediction,
)
from hdc_lightning.models.mlicpp.ops import TABLE_NAMES, build_tables, exact_copy
from hdc_lightning.models.mlicpp.transforms import analysis, hyper_analysis, hyper_synthesis, synthesis
from hdc_lightning.registry import register

# parts of the entropy side: what the exact copy holds
ENTROPY_PARTS = (
    "h_s", "entropy_bottleneck", "gaussian_conditional", "local_context", "channel_context",
    "global_inter_context", "global_intra_context", "entropy_parameters_anchor",
    "entropy_parameters_nonanchor", "lrp_anchor", "lrp_nonanchor",
)  # fmt: skip

# (slice, anchor?, scales, means) → that half of the slice, quantised (zeros in the other half)
Quantize = Callable[[int, bool, Tensor, Tensor], Tensor]


class _Parts(nn.Module):
    """The entropy side's modules, so that one exact copy holds all of them."""

    def __init__(self, model: MLICPP):
        super().__init__()
        for name in ENTROPY_PARTS:
            setattr(self, name, getattr(model, name))


@register(
    "model",
    "mlicpp",
    presets={
        # the published models (JiangWeibeta/MLIC, MLIC++/config/config.py)
        "paper": dict(N=192, M=320, slices=10),
        "tiny": dict(N=32, M=64, slices=2, ep_hidden=(64, 48, 32), cc_hidden=(32, 32), lrp_hidden=(32, 32)),  # tests
    },
)
class MLICPP(CompressionModel):
    """MLIC++ (see the module docstring).

    Args:
        N, M: channels of the transforms and of y (M/slices per slice).
        slices: channel slices of y, coded in order.
        window: the local context's attention window.
        ep_hidden, cc_hidden, lrp_hidden: hidden widths of the parameter nets, the channel
            context and LRP (MLIC++'s are the defaults).
        inter_head_dim: channels per head of the global inter context.
        scale_levels, scale_max: our Gaussian scale table (as :class:`~hdc_lightning.models.lic.LIC`).
    """

    def __init__(
        self,
        N: int = 192,
        M: int = 320,
        slices: int = 10,
        window: int = 5,
        ep_hidden: Sequence[int] = (320, 256, 128),
        cc_hidden: Sequence[int] = (192, 128),
        lrp_hidden: Sequence[int] = (224, 128),
        inter_head_dim: int = 32,
        scale_levels: int = 512,
        scale_max: float = 64.0,
    ):
        super().__init__()
        if M % slices:
            raise ValueError(f"M={M} does not split into {slices} slices")
        s = M // slices
        self.N, self.M, self.slices, self.slice_ch = N, M, slices, s
        self.scale_levels, self.scale_max = int(scale_levels), float(scale_max)
        self.g_a, self.g_s = analysis(N, M), synthesis(N, M)
        self.h_a, self.h_s = hyper_analysis(M, N), hyper_synthesis(M, N)
        self.entropy_bottleneck = EntropyBottleneck(N)
        self.gaussian_conditional = GaussianConditional(None)
        ep, cc, lrp = tuple(ep_hidden), tuple(cc_hidden), tuple(lrp_hidden)
        first = range(1, slices)
        self.local_context = nn.ModuleList(LocalContext(s, window) for _ in range(slices))
        self.channel_context = nn.ModuleList([None, *(ChannelContext(s * i, 4 * s, cc) for i in first)])
        self.global_inter_context = nn.ModuleList(
            [None, *(GlobalInterContext(s * i, 2 * s, inter_head_dim) for i in first)]
        )
        self.global_intra_context = nn.ModuleList([None, *(GlobalIntraContext(s) for _ in first)])
        self.entropy_parameters_anchor = nn.ModuleList(
            EntropyParameters(2 * M + (6 * s if i else 0), 2 * s, ep) for i in range(slices)
        )
        self.entropy_parameters_nonanchor = nn.ModuleList(
            EntropyParameters(2 * M + (10 * s if i else 2 * s), 2 * s, ep) for i in range(slices)
        )
        self.lrp_anchor = nn.ModuleList(ResidualPrediction(M + (i + 1) * s, s, lrp) for i in range(slices))
        self.lrp_nonanchor = nn.ModuleList(ResidualPrediction(M + (i + 1) * s, s, lrp) for i in range(slices))
        for name in TABLE_NAMES:  # the exact path's tables, built by update()
            self.register_buffer(f"{name}_table", torch.zeros(0, dtype=torch.int32))

    # ---- tables -------------------------------------------------------------------------
    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # the fixed-point tables are sized by update(): take the stored size before copying
        for name in TABLE_NAMES:
            key = f"{prefix}{name}_table"
            if key in state_dict:
                setattr(
                    self,
                    f"{name}_table",
                    torch.zeros_like(state_dict[key], device=getattr(self, f"{name}_table").device),
                )
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def update(self, scale_table: Tensor | None = None, force: bool = False, update_quantiles: bool = False) -> bool:
        """Build the CDF tables (our scale table) and the fixed-point tables for coding."""
        if scale_table is None:
            scale_table = get_scale_table(SCALES_MIN, self.scale_max, self.scale_levels)
        updated = super().update(scale_table=scale_table, force=force, update_quantiles=update_quantiles)
        if force or any(getattr(self, f"{n}_table").numel() == 0 for n in TABLE_NAMES):
            for name, table in build_tables().items():
                setattr(self, f"{name}_table", table.to(getattr(self, f"{name}_table").device))
            updated = True
        return updated

    def _tables(self) -> dict[str, Tensor]:
        if any(getattr(self, f"{n}_table").numel() == 0 for n in TABLE_NAMES):
            raise RuntimeError("MLIC++ coding needs its tables: call update() first")
        return {n: getattr(self, f"{n}_table").cpu() for n in TABLE_NAMES}

    # ---- the slice traversal, shared by training and coding -------------------------------
    def _slices(self, parts: nn.Module, hyper: Tensor, quantize: Quantize) -> Tensor:
        hyper_means = hyper[:, self.M :]
        decoded: list[Tensor] = []
        for i in range(self.slices):
            if i:
                previous = torch.cat(decoded, 1)
                inter = parts.global_inter_context[i](previous)
                channel = parts.channel_context[i](previous)
                scales, means = parts.entropy_parameters_anchor[i](torch.cat([inter, channel, hyper], 1)).chunk(2, 1)
            else:
                scales, means = parts.entropy_parameters_anchor[i](hyper).chunk(2, 1)
            anchor = quantize(i, True, ckbd.keep(scales, True), ckbd.keep(means, True))
            lrp = parts.lrp_anchor[i](torch.cat([hyper_means, *decoded, anchor], 1))
            anchor = anchor + ckbd.keep(lrp, True)
            local = parts.local_context[i](anchor)
            if i:
                intra = parts.global_intra_context[i](decoded[-1], anchor)
                ctx = torch.cat([local, intra, inter, channel, hyper], 1)
            else:
                ctx = torch.cat([local, hyper], 1)
            scales, means = parts.entropy_parameters_nonanchor[i](ctx).chunk(2, 1)
            y_hat = anchor + quantize(i, False, ckbd.keep(scales, False), ckbd.keep(means, False))
            lrp = parts.lrp_nonanchor[i](torch.cat([hyper_means, *decoded, y_hat], 1))
            decoded.append(y_hat + ckbd.keep(lrp, False))
        return torch.cat(decoded, 1)

    # ---- training -----------------------------------------------------------------------
    def forward(self, x: Tensor) -> LICOutput:
        h, w = x.shape[-2:]
        y = self.g_a(pad_image(x))
        z = self.h_a(y)
        _, z_likelihoods = self.entropy_bottleneck(z)
        medians = self.entropy_bottleneck._get_medians()
        z_hat = quantize_ste(z - medians) + medians
        hyper = self.h_s(z_hat)
        y_slices = y.chunk(self.slices, 1)
        params: dict[int, list[Tensor]] = {}

        def quantize(i: int, anchor: bool, scales: Tensor, means: Tensor) -> Tensor:
            params.setdefault(i, []).append((scales, means))
            half = ckbd.keep(y_slices[i], anchor)
            return quantize_ste(half - means) + means

        y_hat = self._slices(self, hyper, quantize)
        likelihoods = []
        for i, y_slice in enumerate(y_slices):
            (sa, ma), (sn, mn) = params[i]
            likelihoods.append(self.gaussian_conditional(y_slice, sa + sn, ma + mn)[1])
        x_hat = self.g_s(y_hat)[..., :h, :w]
        return LICOutput(x_hat, {"y": torch.cat(likelihoods, 1), "z": z_likelihoods}, y_hat)

    # ---- coding -------------------------------------------------------------------------
    def stream_names(self) -> list[str]:
        """One rANS stream holds z and every slice of y."""
        return ["yz"]

    def symbols_per_stream(self, h: int, w: int) -> list[int]:
        hp, wp = padded_size(h, w)
        return [self.M * (hp // 16) * (wp // 16) + self.N * (hp // 64) * (wp // 64)]

    def _exact_parts(self) -> nn.Module:
        return exact_copy(_Parts(self), self._tables())

    @staticmethod
    def _coding(gc: GaussianConditional, y_slices: Sequence[Tensor] | None = None) -> Quantize:
        """Code (``y_slices`` given) or decode each checkerboard half through the shared stream."""

        def quantize(i: int, anchor: bool, scales: Tensor, means: Tensor) -> Tensor:
            sq_scales, sq_means = ckbd.squeeze(scales, anchor), ckbd.squeeze(means, anchor)
            indexes = gc.build_indexes(sq_scales)
            if y_slices is not None:
                gc.compress(ckbd.squeeze(y_slices[i], anchor), indexes, sq_means)
            values = gc.decompress([b""], indexes, torch.float64, sq_means)
            return ckbd.unsqueeze(values, anchor)

        return quantize

    @torch.no_grad()
    def compress(self, x: Tensor) -> LICCompressed:
        """Code each image of the batch into one rANS stream (``strings[0][i]`` for image i)."""
        h, w = x.shape[-2:]
        p = next(self.g_a.parameters())
        y = self.g_a(pad_image(x.to(device=p.device, dtype=p.dtype)))
        z = self.h_a(y).to(device="cpu", dtype=torch.float64)
        y = y.to(device="cpu", dtype=torch.float64)
        parts = self._exact_parts()
        streams, y_hats = [], []
        for b in range(y.shape[0]):
            coder = SharedEncoder()
            with entropy_side(), shared_stream(parts, coder):
                eb = parts.entropy_bottleneck
                z_hat = eb.decompress(eb.compress(z[b : b + 1]), z.shape[-2:])
                quantize = self._coding(parts.gaussian_conditional, y[b : b + 1].chunk(self.slices, 1))
                y_hats.append(self._slices(parts, parts.h_s(z_hat), quantize))
            streams.append(coder.flush())
        return LICCompressed([streams], (h, w), torch.cat(y_hats).float())

    @torch.no_grad()
    def decompress(self, strings: list[list[bytes]], shape: Sequence[int]) -> LICDecoded:
        h, w = int(shape[0]), int(shape[1])
        if len(strings) != len(self.stream_names()):
            raise ValueError(f"expected {len(self.stream_names())} streams, got {len(strings)}")
        hp, wp = padded_size(h, w)
        parts = self._exact_parts()
        quantize = self._coding(parts.gaussian_conditional)
        y_hats = []
        for stream in strings[0]:
            with entropy_side(), shared_stream(parts, SharedDecoder(bytes(stream))):
                z_hat = parts.entropy_bottleneck.decompress([b""], (hp // 64, wp // 64))
                y_hats.append(self._slices(parts, parts.h_s(z_hat), quantize))
        y_hat = torch.cat(y_hats).float()
        p = next(self.g_s.parameters())
        x_hat = self.g_s(y_hat.to(device=p.device, dtype=p.dtype))[..., :h, :w]
        return LICDecoded(x_hat, y_hat)
