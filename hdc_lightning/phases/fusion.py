"""Phase 4, ``fusion``: fine-tune enhancer, T and correction on *sampled* DRVs.

In phase 3 the fusion modules learned with ground-truth DRVs from the extractor, which
the decoder never has. Here they see exactly what the decoder computes: DRVs sampled
from x̂ by the denoisers, starting from the seeded noise of the codec's default seed
(``random_seeds=true`` draws a new seed per batch instead, for robustness to any header
seed). The LIC stream, the VQ encoder/codebook/prior and the extractor stay frozen, so
files stay decodable with the same bitstream semantics.

``end_to_end=true`` also trains, at ``e2e_lr``, the denoising networks (through the
sampled DRVs) and the VQ decoder (g_s, post_quant: decode side only, the index stream is
unchanged). One optimizer, one step per batch (``global_step`` counts batches); every
trainable parameter takes part in every backward (DDP without find_unused_parameters).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import Tensor

from hdc_lightning import registry
from hdc_lightning.phases.drv import HybridPhase, HybridPhaseConfig


@dataclass
class FusionConfig(HybridPhaseConfig):
    name: str = "fusion"
    lr: float = 5e-5  # enhancer, predictor T, correction
    end_to_end: bool = False  # also train the denoisers and the VQ decoder
    e2e_lr: float = 1e-5
    random_seeds: bool = False  # a random DRV seed per batch instead of the codec's default seed


E2E_VQ_PARTS = ("g_s", "post_quant")  # decode-only parts of the VQ model


@registry.register("phase", "fusion")
class FusionFinetune(HybridPhase):
    """Phase 4: the fusion modules on the DRVs the decoder will sample."""

    Config = FusionConfig

    def __init__(self, cfg: Mapping[str, Any]):
        super().__init__(cfg)
        m = self.model
        self.freeze(["model.extractor"])
        if not self.c.end_to_end:
            self.freeze(["model.sampler"])
        else:
            for name in E2E_VQ_PARTS:  # unfrozen again after the base froze the whole VQ model
                part = getattr(m.vq, name)
                part.requires_grad_(True)

    def _needed(self) -> list[str]:
        parts = ["model.lic", "model.vq", "model.sampler", "model.enhancer", "model.predictor", "model.correction"]
        return [p for p in parts if getattr(self.model, p.split(".")[1]) is not None]

    def train(self, mode: bool = True):
        super().train(mode)
        if mode and getattr(self, "c", None) is not None and self.c.end_to_end:
            for name in E2E_VQ_PARTS:  # the VQ model is frozen (eval) except its decoder
                getattr(self.model.vq, name).train(True)
        return self

    def param_groups(self) -> list[dict]:
        m, c = self.model, self.c
        fusion = [p for mod in (m.enhancer, m.predictor, m.correction) if mod is not None for p in mod.parameters()]
        groups = [{"params": [p for p in fusion if p.requires_grad], "lr": c.lr, "name": "fusion"}]
        if c.end_to_end:
            e2e = [p for name in E2E_VQ_PARTS for p in getattr(m.vq, name).parameters()]
            if m.sampler is not None:
                e2e += list(m.sampler.parameters())
            groups.append({"params": [p for p in e2e if p.requires_grad], "lr": c.e2e_lr, "name": "end_to_end"})
        return groups

    def training_step(self, batch: Any, batch_idx: int) -> Tensor | None:
        x = self.unpack_train_batch(batch)
        m = self.model
        b, _, h, w = x.shape
        sent = m.training_masks(b, h // 16, w // 16, x.device, self.c.reveal_max)
        x_hat = m.base_reconstruction(x)
        seed = int(torch.randint(0, 2**31 - 1, (1,))) if self.c.random_seeds else m.drv_seed
        with torch.set_grad_enabled(self.c.end_to_end):
            drvs = m.sample_drvs(x_hat, seed)
        out = m.fuse(x, x_hat, drvs, sent, detach_lic=self.c.detach_lic)
        loss, logs = self.fusion_losses(x, out)
        loss = self.guard_loss(loss)
        if loss is None:
            return None
        self.log_scalars("train", {**logs, "loss": loss}, on_step=True, on_epoch=False, batch_size=b)
        self.maybe_log_images(x, out)
        return loss
