"""Phase 1, LIC pretraining: rate–distortion training of the LIC model at one λ.

loss = the rate–distortion loss (:class:`~hdc_lightning.losses.rate_distortion.RateDistortionLoss`,
λ·255²·MSE or λ·(1 − MS-SSIM), + bpp from the likelihoods) + aux, the entropy
bottleneck's quantile objective. The aux term only
reaches the ``.quantiles`` parameters and the R-D term never does, so one optimizer
with two disjoint parameter groups (own learning rates) trains both in one backward:
no second optimizer (``global_step`` = batches, ``max_steps`` means batches) and every
parameter receives a gradient each step (DDP needs no ``find_unused_parameters``).

Every validation first runs ``update(force=True)``, then encodes and decodes each
validation image with the LIC codec (the ``.hdc`` file ``hdc compress`` writes): the
shared contract (``val/bpp`` from the file's bytes, quality of the decoded image) plus
``val/bpp_est`` (the likelihoods' estimate) and ``val/rate_ratio`` (payload / estimate).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from hdc_lightning import registry
from hdc_lightning.codec.lic import LICCodec
from hdc_lightning.config.schema import PhaseConfig
from hdc_lightning.errors import ConfigError
from hdc_lightning.evaluation.metrics import psnr_rgb
from hdc_lightning.losses.rate_distortion import ms_ssim_adaptive
from hdc_lightning.models.contracts import LICStream, check_contract
from hdc_lightning.models.lic import estimated_bits
from hdc_lightning.phases.base import PhaseModule, ValImage


@dataclass
class LICConfig(PhaseConfig):
    name: str = "lic"
    lr: float = 1e-4  # main (net) parameter group
    aux_lr: float = 1e-3  # entropy-bottleneck quantiles
    lmbda: float = 0.0018  # rate–distortion trade-off (see experiments/lic/ladder.yaml)
    distortion: str = "mse"  # mse | ms-ssim
    lr_milestones: list[int] = field(default_factory=list)  # steps where the net lr is multiplied by lr_gamma
    lr_gamma: float = 0.1


@registry.register("phase", "lic")
class LICPretrain(PhaseModule):
    """Trains ``cfg.model`` (a LIC-contract model, e.g. ``lic``/``tiny``) at one λ."""

    Config = LICConfig

    def __init__(self, cfg: Mapping[str, Any]):
        super().__init__(cfg)
        self.loss = registry.build_from("loss", "rate_distortion", self.c, where="phase")
        self.model = registry.build_spec("model", cfg["model"], where="model")
        check_contract(self.model, LICStream, "lic", cfg["model"].get("name"))
        self._codec: LICCodec | None = None

    def training_step(self, batch: Any, batch_idx: int) -> Tensor | None:
        x = self.unpack_train_batch(batch)
        out = self.model(x)
        rd = self.loss(x, out.x_hat, out.likelihoods)
        aux = self.model.aux_loss()
        loss = self.guard_loss(rd.loss + aux)
        if loss is None:
            return None
        if self.logging_this_step():
            logs = {**rd._asdict(), "rd_loss": rd.loss, "loss": loss, "aux_loss": aux, "psnr": psnr_rgb(x, out.x_hat)}
            if logs["ms_ssim_adaptive"] is None:
                with torch.no_grad():
                    logs["ms_ssim_adaptive"] = ms_ssim_adaptive(out.x_hat.detach(), x)
            self.log_scalars("train", logs, on_step=True, on_epoch=False, batch_size=x.shape[0])
        return loss

    # ---- validation: the LIC codec's own files ----------------------------------------------
    def on_validation_epoch_start(self) -> None:
        self.model.update(force=True)
        self._codec = self.val_codec(LICCodec)

    def code_val_image(self, x: Tensor) -> ValImage:
        h, w = x.shape[-2:]
        data = self._codec.encode(x[0])
        decoded = self._codec.decode(data)
        bpp_est = estimated_bits(self.model(x).likelihoods).sum() / (h * w)
        payload_bpp = 8.0 * sum(decoded.stream_bytes.values()) / (h * w)
        extras = {"bpp_est": bpp_est, "rate_ratio": payload_bpp / bpp_est.clamp_min(1e-12)}
        return ValImage(decoded.image[None], len(data), extras)

    # ---- optimisation -------------------------------------------------------------------
    def configure_optimizers(self):
        # (net, aux): the entropy bottleneck's ``.quantiles`` vs everything else.
        named = [(n, p) for n, p in self.named_parameters() if p.requires_grad]
        aux = [p for n, p in named if n.endswith(".quantiles")]
        if not aux:
            name = self.cfg["model"].get("name")
            raise ConfigError(f"model.name: phase 'lic' needs a model with entropy-bottleneck quantiles, got '{name}'")
        opt = self.build_optimizer(
            [
                {"params": [p for n, p in named if not n.endswith(".quantiles")], "lr": self.c.lr, "name": "net"},
                {"params": aux, "lr": self.c.aux_lr, "name": "aux"},
            ]
        )
        milestones, gamma = sorted(int(m) for m in self.c.lr_milestones), self.c.lr_gamma

        def net_factor(step: int) -> float:
            return gamma ** sum(step >= m for m in milestones)

        sched = torch.optim.lr_scheduler.LambdaLR(opt, [net_factor, lambda step: 1.0])
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        # Clip the net group only: the quantiles' aux gradients must not shrink the R-D step.
        if not gradient_clip_val:
            return
        params = optimizer.param_groups[0]["params"]
        if gradient_clip_algorithm == "value":
            torch.nn.utils.clip_grad_value_(params, gradient_clip_val)
        else:
            torch.nn.utils.clip_grad_norm_(params, gradient_clip_val)
