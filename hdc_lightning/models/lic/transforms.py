"""Analysis/synthesis transforms of the LIC model (ELIC-style, sizes from the preset).

``g_a``: four stride-2 5x5 convolutions (x → y at H/16); after each of the first
three, ``blocks`` residual bottleneck blocks; attention blocks after the second stage
and on y (when ``attention``). ``g_s`` mirrors it with transposed convolutions.
``h_a``/``h_s`` take y to the hyper-latent z at H/64 and back to 2·M entropy
parameters (means and scales seed for every channel of y).
"""

from __future__ import annotations

from compressai.layers import AttentionBlock
from compressai.models.sensetime import ResidualBottleneckBlock
from compressai.models.utils import conv, deconv
from torch import nn


def _res_stack(ch: int, blocks: int) -> list[nn.Module]:
    return [ResidualBottleneckBlock(ch, ch) for _ in range(blocks)]


def analysis(N: int, M: int, blocks: int, attention: bool) -> nn.Sequential:
    """``g_a``: 3 → N → N → N → M channels, each stage halving H and W."""
    layers: list[nn.Module] = [conv(3, N, kernel_size=5, stride=2), *_res_stack(N, blocks)]
    layers += [conv(N, N, kernel_size=5, stride=2), *_res_stack(N, blocks)]
    if attention:
        layers.append(AttentionBlock(N))
    layers += [conv(N, N, kernel_size=5, stride=2), *_res_stack(N, blocks)]
    layers.append(conv(N, M, kernel_size=5, stride=2))
    if attention:
        layers.append(AttentionBlock(M))
    return nn.Sequential(*layers)


def synthesis(N: int, M: int, blocks: int, attention: bool) -> nn.Sequential:
    """``g_s``: M → N → N → N → 3 channels, each stage doubling H and W."""
    layers: list[nn.Module] = [AttentionBlock(M)] if attention else []
    layers += [deconv(M, N, kernel_size=5, stride=2), *_res_stack(N, blocks)]
    layers.append(deconv(N, N, kernel_size=5, stride=2))
    if attention:
        layers.append(AttentionBlock(N))
    layers += _res_stack(N, blocks)
    layers += [deconv(N, N, kernel_size=5, stride=2), *_res_stack(N, blocks)]
    layers.append(deconv(N, 3, kernel_size=5, stride=2))
    return nn.Sequential(*layers)


def hyper_analysis(M: int, Nh: int) -> nn.Sequential:
    """``h_a``: y (M channels, H/16) → z (Nh channels, H/64)."""
    return nn.Sequential(
        conv(M, Nh, kernel_size=3, stride=1),
        nn.ReLU(inplace=True),
        conv(Nh, Nh, kernel_size=5, stride=2),
        nn.ReLU(inplace=True),
        conv(Nh, Nh, kernel_size=5, stride=2),
    )


def hyper_synthesis(Nh: int, M: int) -> nn.Sequential:
    """``h_s``: z_hat → 2·M hyper parameters at the resolution of y."""
    mid = Nh * 3 // 2
    return nn.Sequential(
        deconv(Nh, Nh, kernel_size=5, stride=2),
        nn.ReLU(inplace=True),
        deconv(Nh, mid, kernel_size=5, stride=2),
        nn.ReLU(inplace=True),
        conv(mid, M * 2, kernel_size=3, stride=1),
    )
