"""A conditional, per-example-weighted hinge GAN for the realism-conditioned decoder.

The discriminator sees the output next to the fidelity image it was decoded with (x̂_lic),
as HiFiC's sees the latent: it judges "is this a plausible picture of *that* content", not
"is this any natural image". Each example's generator term is weighted by its realism level
a, so a = 0 stays the MSE-optimal decoder and the GAN only shapes the upper end of the knob
(Agustsson et al., CVPR 2023).

One backward covers both players, as in :mod:`hdc_lightning.losses.vqgan`: the
discriminator's loss sees detached outputs; the generator's term runs the discriminator
with detached parameters.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from hdc_lightning.losses.vqgan import PatchDiscriminator, hinge_d_loss, logits_for_generator
from hdc_lightning.registry import register


class AdversarialOutput(NamedTuple):
    g_loss: torch.Tensor  # mean over the batch of weight · (−D(fake)): reaches the generator only
    d_loss: torch.Tensor  # hinge loss of D: reaches D only
    logits_real: torch.Tensor  # detached means, for the logs
    logits_fake: torch.Tensor


@register("loss", "conditional_gan")
class ConditionalAdversarialLoss(nn.Module):
    """PatchGAN on ``[image, condition]`` (both [B, 3, H, W] in [0, 1])."""

    def __init__(self, channels: int = 64, n_layers: int = 3):
        super().__init__()
        self.discriminator = PatchDiscriminator(channels, n_layers, in_channels=6)

    def forward(
        self, x: torch.Tensor, fake: torch.Tensor, cond: torch.Tensor, weights: torch.Tensor | None = None
    ) -> AdversarialOutput:
        """``weights`` [B] scale each example's generator term (None: 1)."""
        cond = cond.detach()
        # Real and detached fake in one pass (GroupNorm is per example, so batching is exact).
        logits = self.discriminator(torch.cat([torch.cat([x, cond], 1), torch.cat([fake.detach(), cond], 1)]))
        logits_real, logits_fake = logits.chunk(2)
        d_loss = hinge_d_loss(logits_real, logits_fake)
        g = -logits_for_generator(self.discriminator, torch.cat([fake, cond], 1)).float().flatten(1).mean(1)
        if weights is not None:
            g = g * weights.to(g.dtype)
        return AdversarialOutput(g.mean(), d_loss, logits_real.detach().mean(), logits_fake.detach().mean())
