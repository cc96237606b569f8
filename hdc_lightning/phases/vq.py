"""Phase 2, ``vq``: train the VQ stream's codebook autoencoder as a VQGAN."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from hdc_lightning import registry
from hdc_lightning.config.schema import PhaseConfig
from hdc_lightning.evaluation.metrics import psnr_rgb
from hdc_lightning.losses.perceptual import resolve_backbone
from hdc_lightning.models.contracts import VQStream, check_contract
from hdc_lightning.models.lic import pad_image
from hdc_lightning.phases.base import PhaseModule, ValImage


@dataclass
class VQConfig(PhaseConfig):
    name: str = "vq"
    lr: float = 1e-4  # generator (encoder, codebook, decoder, index prior)
    disc_lr: float = 1e-4
    beta1: float = 0.5  # Adam betas of both groups (VQGAN's 0.5, 0.9)
    beta2: float = 0.9
    perceptual_weight: float = 1.0  # 0 trains without LPIPS (no backbone weights needed)
    lpips_net: str = "alex"
    lpips_backbone: str | None = None  # path to torchvision's backbone weights (else HDC_LPIPS_BACKBONE / torch hub)
    disc_weight: float = 0.8
    disc_start: int = 10000  # batches before the adversarial terms switch on
    disc_channels: int = 64
    disc_layers: int = 3
    adaptive_weight: bool = True
    codebook_weight: float = 1.0  # codebook + commitment terms
    chroma_weight: float = 0.0  # L1 of Cb/Cr averaged over chroma_block² pixels (colour cast); 0 = off
    chroma_block: int = 4
    grad_clip: float | None = None  # clip the norm of all gradients (both groups together)
    image_every: int = 500  # batches between training reconstruction grids


@registry.register("phase", "vq")
class VQCodebook(PhaseModule):
    """VQGAN training of the ``vq`` model: L1 + LPIPS + PatchGAN hinge (adaptive weight).

    One optimizer (Adam) with two parameter groups, ``generator`` and ``discriminator``,
    and ONE backward and ONE ``optimizer.step()`` per batch: the discriminator loss is
    computed on ``x_hat.detach()`` and the generator's adversarial term through the
    discriminator with detached parameters (:mod:`hdc_lightning.losses.vqgan`), so each
    group gets only its own gradient and every parameter takes part in every backward
    (DDP runs without ``find_unused_parameters``).

    ``trainer.max_steps`` therefore counts **batches**: Lightning's ``global_step`` counts
    ``optimizer.step()`` calls (Lightning #17958) and there is exactly one per trained batch.
    Batches skipped by the non-finite guard are not counted. ``phase.disc_start`` is
    compared with the same counter.
    """

    Config = VQConfig

    def __init__(self, cfg: Mapping[str, Any]):
        super().__init__(cfg)
        self.automatic_optimization = False
        c = self.c
        if c.perceptual_weight > 0 and not c.lpips_random_backbone:
            resolve_backbone(c.lpips_net, c.lpips_backbone)  # fail before building anything large
        self.model = registry.build_spec("model", cfg["model"], "model")
        check_contract(self.model, VQStream, "vq", cfg["model"].get("name"))
        self.loss = registry.build_from("loss", "vqgan", c, where="phase")
        self._coder = None

    # ---- optimisation ---------------------------------------------------------------
    def configure_optimizers(self):
        gen = [p for p in self.model.parameters() if p.requires_grad]
        disc = [p for p in self.loss.discriminator.parameters() if p.requires_grad]
        return self.build_optimizer(
            [
                {"params": gen, "lr": self.c.lr, "name": "generator"},
                {"params": disc, "lr": self.c.disc_lr, "name": "discriminator"},
            ],
            betas=(self.c.beta1, self.c.beta2),
        )

    def training_step(self, batch: Any, batch_idx: int) -> None:
        x = self.unpack_train_batch(batch)
        opt = self.optimizers()
        out = self.model(x)
        terms = self.loss(x, out.x_hat, self.global_step, self.model.last_layer)
        vq_terms = out.codebook_loss + out.commit_loss
        loss = self.guard_loss(terms.loss + self.c.codebook_weight * vq_terms + out.prior_loss)
        if loss is None:
            return None
        opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        if self.c.grad_clip:
            self.clip_gradients(opt, gradient_clip_val=self.c.grad_clip, gradient_clip_algorithm="norm")
        opt.step()

        psnr = psnr_rgb(x, out.x_hat) if self.logging_this_step() else None  # a host sync: only when logged
        self.log_scalars(
            "train",
            {
                "loss": loss,
                "l1": terms.rec,
                "chroma": terms.chroma if self.c.chroma_weight > 0 else None,
                "lpips": terms.perceptual
                if self.loss.perceptual is not None
                else None,  # loss term (maybe random trunk)
                "g_adv": terms.g_adv,
                "d_loss": terms.d_loss,
                "adv_weight": terms.adv_weight,
                "logits_real": terms.logits_real,
                "logits_fake": terms.logits_fake,
                "codebook": out.codebook_loss,
                "commit": out.commit_loss,
                "prior_bits_per_index": out.prior_loss / math.log(2.0),
                "perplexity": out.perplexity,
                "usage": out.usage,
                "psnr": psnr,
                "disc_active": float(self.global_step >= self.c.disc_start),
            },
            on_step=True,
            prog_bar=False,
        )
        if self.c.image_every > 0 and (self.global_step - 1) % self.c.image_every == 0:  # after step 1, 1+N, ...
            self.log_image_grid("train/reconstruction", [x, out.x_hat])

    # ---- validation: quality and the real size of the index map -------------------------
    def on_validation_epoch_start(self) -> None:
        self.model.update()
        self._coder = self.model.index_coder()

    def code_val_image(self, x: torch.Tensor) -> ValImage:
        # The VQ stage has no file format of its own: its bytes are the rANS-coded index map
        # of the image padded to whole tokens, as the hybrid codec would send it in full.
        h, w = x.shape[-2:]
        out = self.model(pad_image(x, self.model.downsample))
        data = self._coder.encode_indices(out.indices[0].cpu())
        extras = {
            "bpp_indices_estimate": self.model.prior.bits(out.indices[0].cpu()) / (h * w),  # the prior's ideal length
            "usage": out.usage,
            "perplexity": out.perplexity,
        }
        return ValImage(out.x_hat[..., :h, :w].clamp(0, 1), len(data), extras)

    # ---- checkpoints: the stored CDF table always matches the stored logits ---------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        self.model.update()
        state = checkpoint.get("state_dict", {})
        for key, value in self.model.prior.state_dict().items():
            if f"model.prior.{key}" in state:
                state[f"model.prior.{key}"] = value.detach().clone()
