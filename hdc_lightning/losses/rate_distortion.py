"""Rate–distortion loss of a LIC model at one λ (Ballé et al., ICLR 2018).

loss = λ·255²·MSE + bpp (``distortion="mse"``) or λ·(1 − MS-SSIM) + bpp, with bpp the
likelihoods' estimate over the batch's pixels; images in [0, 1]. The entropy bottleneck's
aux (quantile) loss is the model's own (``model.aux_loss()``), not part of this one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import NamedTuple

import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics.functional.image import multiscale_structural_similarity_index_measure

from hdc_lightning.errors import ConfigError
from hdc_lightning.models.lic import estimated_bits
from hdc_lightning.registry import register

DISTORTIONS = ("mse", "ms-ssim")
_MS_SSIM_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def ms_ssim_adaptive(x_hat: Tensor, x: Tensor) -> Tensor:
    """Differentiable MS-SSIM in float with as many of the 5 standard scales as the image
    size allows (≥ 1): a training signal on crops, not the 8-bit metric of evaluation."""
    side = min(x.shape[-2:])
    scales = max(1, min(5, int(math.floor(math.log2(max(side, 1) / 10))) + 1))  # 11-px window at the last scale
    betas = _MS_SSIM_BETAS[:scales]
    kernel = 11 if side > 10 * 2 ** (scales - 1) else max(3, (side // 2) * 2 - 1)
    return multiscale_structural_similarity_index_measure(
        x_hat.float().clamp(0, 1), x.float(), data_range=1.0, betas=betas, kernel_size=kernel
    )


class RDLossOutput(NamedTuple):
    loss: Tensor  # distortion + bpp_est
    bpp_est: Tensor  # bits per pixel the likelihoods estimate
    distortion: Tensor  # the weighted distortion term
    mse: Tensor
    ms_ssim_adaptive: Tensor | None  # only when it is the distortion (else not computed)


@register("loss", "rate_distortion")
class RateDistortionLoss(nn.Module):
    def __init__(self, *, lmbda: float, distortion: str):
        super().__init__()
        if distortion not in DISTORTIONS:
            raise ConfigError(f"phase.distortion: '{distortion}' is not one of {', '.join(DISTORTIONS)}")
        self.lmbda, self.distortion = lmbda, distortion

    def forward(self, x: Tensor, x_hat: Tensor, likelihoods: Mapping[str, Tensor]) -> RDLossOutput:
        num_pixels = x.shape[0] * x.shape[-2] * x.shape[-1]
        bpp = estimated_bits(dict(likelihoods)).sum() / num_pixels
        mse = F.mse_loss(x_hat, x)
        quality = None
        if self.distortion == "mse":
            distortion = self.lmbda * 255**2 * mse
        else:
            quality = ms_ssim_adaptive(x_hat, x)
            distortion = self.lmbda * (1 - quality)
        return RDLossOutput(distortion + bpp, bpp, distortion, mse, quality)
