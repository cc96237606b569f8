"""The entropy model of y and z, composed from compressai's latent codecs.

Hyperprior (z, factorized entropy bottleneck) + ELIC's space-channel context: y is
split into uneven channel groups coded one after another; group k is conditioned on
all earlier groups (channel context g_ch) and, inside the group, on its checkerboard
anchors (spatial context g_sp, two passes). A pointwise "parameter aggregation" net
turns [g_sp, g_ch, hyper params] into the (means, scales) of a Gaussian per element.
"""

from __future__ import annotations

from collections.abc import Sequence

from compressai.entropy_models import EntropyBottleneck
from compressai.latent_codecs import (
    ChannelGroupsLatentCodec,
    CheckerboardLatentCodec,
    GaussianConditionalLatentCodec,
    HyperLatentCodec,
    HyperpriorLatentCodec,
)
from compressai.layers import CheckerboardMaskedConv2d
from compressai.models.utils import conv
from torch import nn

from hdc_lightning.models.lic.transforms import hyper_analysis, hyper_synthesis


def _channel_context(in_ch: int, out_ch: int, hidden: Sequence[int]) -> nn.Sequential:
    """g_ch: 5x5 convs over the already decoded groups."""
    h1, h2 = hidden
    return nn.Sequential(
        conv(in_ch, h1, kernel_size=5, stride=1),
        nn.ReLU(inplace=True),
        conv(h1, h2, kernel_size=5, stride=1),
        nn.ReLU(inplace=True),
        conv(h2, out_ch, kernel_size=5, stride=1),
    )


def _param_aggregation(in_ch: int, out_ch: int) -> nn.Sequential:
    """Pointwise (1x1) net, widths ramping linearly from ``in_ch`` down to ``out_ch``.

    Must stay pointwise: the checkerboard codec evaluates it on half the positions.
    """
    step = (in_ch - out_ch) // 3
    w1, w2 = in_ch - step, in_ch - 2 * step
    return nn.Sequential(
        nn.Conv2d(in_ch, w1, 1),
        nn.ReLU(inplace=True),
        nn.Conv2d(w1, w2, 1),
        nn.ReLU(inplace=True),
        nn.Conv2d(w2, out_ch, 1),
    )


def build_latent_codec(M: int, Nh: int, groups: Sequence[int], ctx_hidden: Sequence[int]) -> HyperpriorLatentCodec:
    """Hyperprior + channel groups + checkerboard, over y with ``M`` channels."""
    groups = [int(g) for g in groups]
    per_group = {}
    channel_context = {}
    for k, g in enumerate(groups):
        if k > 0:
            channel_context[f"y{k}"] = _channel_context(sum(groups[:k]), 2 * g, ctx_hidden)
        # inputs: spatial context (2g), channel context (2g, not for the first group), hyper params (2M)
        in_ch = 2 * g + (2 * g if k > 0 else 0) + 2 * M
        per_group[f"y{k}"] = CheckerboardLatentCodec(
            latent_codec={"y": GaussianConditionalLatentCodec(quantizer="ste", chunks=("means", "scales"))},
            context_prediction=CheckerboardMaskedConv2d(g, 2 * g, kernel_size=5, stride=1, padding=2),
            entropy_parameters=_param_aggregation(in_ch, 2 * g),
        )
    return HyperpriorLatentCodec(
        latent_codec={
            "y": ChannelGroupsLatentCodec(groups=groups, channel_context=channel_context, latent_codec=per_group),
            "hyper": HyperLatentCodec(
                entropy_bottleneck=EntropyBottleneck(Nh),
                h_a=hyper_analysis(M, Nh),
                h_s=hyper_synthesis(Nh, M),
                quantizer="ste",
            ),
        }
    )
