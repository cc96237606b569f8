"""VQGAN loss: L1 + LPIPS + PatchGAN hinge with an adaptive generator weight (Esser et al., CVPR 2021).

Built for ONE backward per batch covering generator and discriminator (see
:class:`hdc_lightning.phases.vq.VQCodebook`):

* the discriminator loss sees ``x_hat.detach()``, so it only reaches D's parameters;
* the generator's adversarial term runs D through ``torch.func.functional_call`` with
  *detached* parameters, so it only reaches the generator;
* before ``disc_start`` the discriminator loss is multiplied by 0, so D's parameters still
  receive (zero) gradients and DDP needs no ``find_unused_parameters``.

The adaptive weight ``||∇L_rec|| / ||∇L_adv||`` at the decoder's last layer is computed in
float32, is 0 when either gradient is not finite or the adversarial one vanishes, and is
clamped, so bf16/fp16 autocast cannot turn it into NaN or a huge factor.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from hdc_lightning.colour import block_chroma
from hdc_lightning.losses.perceptual import PerceptualLoss
from hdc_lightning.models.vq.blocks import norm
from hdc_lightning.registry import register


class PatchDiscriminator(nn.Module):
    """PatchGAN (Isola et al., CVPR 2017): a logit per overlapping patch; GroupNorm, no BatchNorm
    (BatchNorm statistics would be updated by the extra generator pass and need syncing under DDP)."""

    def __init__(self, channels: int = 64, n_layers: int = 3, in_channels: int = 3):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, channels, 4, 2, 1), nn.LeakyReLU(0.2)]
        c = channels
        for i in range(1, n_layers + 1):
            c_next = channels * min(2**i, 8)
            stride = 2 if i < n_layers else 1
            layers += [nn.Conv2d(c, c_next, 4, stride, 1, bias=False), norm(c_next), nn.LeakyReLU(0.2)]
            c = c_next
        layers.append(nn.Conv2d(c, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x * 2 - 1)  # images (and conditioning images) in [0, 1]


def logits_for_generator(discriminator: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """D's logits of ``x`` through detached parameters: the gradient reaches ``x`` only, so the
    generator's term never trains D inside the one shared backward."""
    frozen = {n: p.detach() for n, p in discriminator.named_parameters()}
    return functional_call(discriminator, frozen, (x,))


def hinge_d_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * (F.relu(1.0 - logits_real.float()).mean() + F.relu(1.0 + logits_fake.float()).mean())


def adaptive_weight(
    rec: torch.Tensor, adv: torch.Tensor, last_layer: torch.Tensor, max_weight: float = 1e4
) -> torch.Tensor:
    """``||∂rec/∂W|| / ||∂adv/∂W||`` at ``last_layer`` (detached, finite, in [0, max_weight])."""
    g_rec = torch.autograd.grad(rec, last_layer, retain_graph=True)[0].float().norm()
    g_adv = torch.autograd.grad(adv, last_layer, retain_graph=True)[0].float().norm()
    ok = torch.isfinite(g_rec) & torch.isfinite(g_adv) & (g_adv > 0)
    w = torch.where(ok, g_rec / (g_adv + 1e-4), torch.zeros_like(g_rec))
    return torch.nan_to_num(w, nan=0.0, posinf=0.0).clamp(0.0, max_weight).detach()


class VQGANLossOutput(NamedTuple):
    loss: torch.Tensor  # everything for the single backward (generator + discriminator terms)
    rec: torch.Tensor  # L1
    chroma: torch.Tensor  # L1 of block-averaged Cb/Cr (0 when chroma_weight == 0)
    perceptual: torch.Tensor  # LPIPS (0 when perceptual_weight == 0)
    g_adv: torch.Tensor  # -mean D(x_hat), generator side
    d_loss: torch.Tensor  # hinge loss of D (before the disc_start factor)
    adv_weight: torch.Tensor  # adaptive weight * disc_weight actually applied
    logits_real: torch.Tensor
    logits_fake: torch.Tensor


@register("loss", "vqgan")
class VQGANLoss(nn.Module):
    """Keyword-only, no defaults: they live in the VQ phase's config (``VQConfig``)."""

    def __init__(
        self,
        *,
        perceptual_weight: float,
        lpips_net: str,
        lpips_random_backbone: bool,
        lpips_backbone: str | None,
        disc_weight: float,
        disc_start: int,
        disc_channels: int,
        disc_layers: int,
        adaptive_weight: bool,
        chroma_weight: float,
        chroma_block: int,
    ):
        super().__init__()
        self.chroma_weight, self.chroma_block = chroma_weight, chroma_block
        self.perceptual_weight, self.disc_weight, self.disc_start, self.adaptive = (
            perceptual_weight,
            disc_weight,
            disc_start,
            adaptive_weight,
        )
        self.discriminator = PatchDiscriminator(disc_channels, disc_layers)
        self.perceptual = (
            PerceptualLoss(lpips_net, lpips_random_backbone, lpips_backbone) if perceptual_weight > 0 else None
        )

    def reconstruction(self, x: torch.Tensor, x_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rec = (x.float() - x_hat.float()).abs().mean()
        perc = self.perceptual(x_hat, x) if self.perceptual is not None else rec.new_zeros(())
        return rec, perc

    def forward(
        self, x: torch.Tensor, x_hat: torch.Tensor, step: int, last_layer: torch.Tensor | None
    ) -> VQGANLossOutput:
        rec, perc = self.reconstruction(x, x_hat)
        chroma = rec.new_zeros(())
        if self.chroma_weight > 0:
            # A short training spends the bottleneck on luminance first and decodes a
            # training-set-average colour (docs/vq.md); this term prices the colour cast.
            chroma = (block_chroma(x, self.chroma_block) - block_chroma(x_hat, self.chroma_block)).abs().mean()
        nll = rec + self.perceptual_weight * perc + self.chroma_weight * chroma
        active = step >= self.disc_start
        # D on real and detached fake in one pass (GroupNorm is per sample, so batching is exact).
        logits = self.discriminator(torch.cat([x, x_hat.detach()]))
        logits_real, logits_fake = logits.chunk(2)
        d_loss = hinge_d_loss(logits_real, logits_fake)
        zero = rec.new_zeros(())
        g_adv, weight = zero, zero
        if active and self.disc_weight > 0:
            g_adv = -logits_for_generator(self.discriminator, x_hat).float().mean()
            if self.adaptive and last_layer is not None and torch.is_grad_enabled():
                weight = adaptive_weight(nll, g_adv, last_layer) * self.disc_weight
            else:
                weight = zero + self.disc_weight
        loss = nll + weight * g_adv + d_loss * (1.0 if active else 0.0)
        return VQGANLossOutput(
            loss, rec, chroma, perc, g_adv, d_loss, weight, logits_real.detach().mean(), logits_fake.detach().mean()
        )
