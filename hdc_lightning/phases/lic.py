"""Phase 1, LIC pretraining: rate–distortion training of the LIC model at one λ.

loss = λ·255²·MSE (or λ·(1 − MS-SSIM)) + bpp + aux, where bpp comes from the
likelihoods and aux is the entropy bottleneck's quantile objective. The aux term only
reaches the ``.quantiles`` parameters and the R-D term never does, so one optimizer
with two disjoint parameter groups (own learning rates) trains both in one backward:
no second optimizer (``global_step`` = batches, ``max_steps`` means batches) and every
parameter receives a gradient each step (DDP needs no ``find_unused_parameters``).

Every validation first runs ``update(force=True)`` and then really compresses and
decompresses each validation image: ``val/bpp_real`` (payload bytes) and
``val/bpp_file`` (with the container header) are logged beside ``val/bpp_est``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, List, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics.functional.image import multiscale_structural_similarity_index_measure, peak_signal_noise_ratio

from hdc_lightning import registry
from hdc_lightning.codec.container import overhead_bytes
from hdc_lightning.config.schema import PhaseConfig
from hdc_lightning.errors import ConfigError
from hdc_lightning.models.lic import estimated_bits, resize_entropy_buffers
from hdc_lightning.phases.base import PhaseModule

DISTORTIONS = ("mse", "ms-ssim")
_MS_SSIM_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


@dataclass
class LICConfig(PhaseConfig):
    name: str = "lic"
    lr: float = 1e-4  # main (net) parameter group
    aux_lr: float = 1e-3  # entropy-bottleneck quantiles
    lmbda: float = 0.0018  # rate–distortion trade-off (see experiments/lic/ladder.yaml)
    distortion: str = "mse"  # mse | ms-ssim
    lr_milestones: List[int] = field(default_factory=list)  # steps where the net lr is multiplied by lr_gamma
    lr_gamma: float = 0.1
    val_real_codec: bool = True  # real compress/decompress at every validation


def ms_ssim(x_hat: Tensor, x: Tensor) -> Tensor:
    """MS-SSIM with as many of the 5 standard scales as the image size allows (≥ 1)."""
    side = min(x.shape[-2:])
    scales = max(1, min(5, int(math.floor(math.log2(max(side, 1) / 10))) + 1))  # 11-px window at the last scale
    betas = _MS_SSIM_BETAS[:scales]
    kernel = 11 if side > 10 * 2 ** (scales - 1) else max(3, (side // 2) * 2 - 1)
    return multiscale_structural_similarity_index_measure(
        x_hat.float().clamp(0, 1), x.float(), data_range=1.0, betas=betas, kernel_size=kernel
    )


@registry.register("phase", "lic")
class LICPretrain(PhaseModule):
    """Trains ``cfg.model`` (a LIC-contract model, e.g. ``lic``/``tiny``) at one λ."""

    Config = LICConfig

    def __init__(self, cfg: Mapping[str, Any]):
        super().__init__(cfg)
        p = self.pcfg
        self.distortion = str(p.get("distortion", "mse"))
        if self.distortion not in DISTORTIONS:
            raise ConfigError(f"phase.distortion: '{self.distortion}' is not one of {', '.join(DISTORTIONS)}")
        self.lmbda = float(p.get("lmbda", LICConfig.lmbda))
        self.model = registry.build_spec("model", cfg["model"], where="model")

    # ---- loss -------------------------------------------------------------------------
    def rd_terms(self, x: Tensor, x_hat: Tensor, likelihoods: Mapping[str, Tensor]) -> dict[str, Tensor]:
        num_pixels = x.shape[0] * x.shape[-2] * x.shape[-1]
        bpp = estimated_bits(dict(likelihoods)).sum() / num_pixels
        mse = F.mse_loss(x_hat, x)
        if self.distortion == "mse":
            quality = None
            distortion = self.lmbda * 255**2 * mse
        else:
            quality = ms_ssim(x_hat, x)
            distortion = self.lmbda * (1 - quality)
        return {"loss": distortion + bpp, "bpp_est": bpp, "distortion": distortion, "mse": mse, "ms_ssim": quality}

    @staticmethod
    def psnr(x_hat: Tensor, x: Tensor) -> Tensor:
        return peak_signal_noise_ratio(x_hat.detach().clamp(0, 1), x, data_range=1.0, dim=(1, 2, 3))

    def training_step(self, batch: Any, batch_idx: int) -> Tensor | None:
        x = self.unpack_train_batch(batch)
        out = self.model(x)
        terms = self.rd_terms(x, out.x_hat, out.likelihoods)
        aux = self.model.aux_loss()
        loss = self.guard_loss(terms["loss"] + aux)
        if loss is None:
            return None
        if self._logs_written_this_step():  # on other steps Lightning would drop on_step values anyway
            rd_loss = terms.pop("loss")
            logs = {**terms, "rd_loss": rd_loss, "loss": loss, "aux_loss": aux, "psnr": self.psnr(out.x_hat, x)}
            if logs["ms_ssim"] is None:
                with torch.no_grad():
                    logs["ms_ssim"] = ms_ssim(out.x_hat.detach(), x)
            self.log_scalars("train", logs, on_step=True, on_epoch=False, batch_size=x.shape[0])
        return loss

    def _logs_written_this_step(self) -> bool:
        # The same test Lightning's own LearningRateMonitor/DeviceStatsMonitor use.
        connector = getattr(self._trainer, "_logger_connector", None)
        return True if connector is None else bool(connector.should_update_logs)

    # ---- validation with the real entropy coder -----------------------------------------
    def on_validation_epoch_start(self) -> None:
        self.model.update(force=True)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        images, sizes = batch[0], batch[1]
        for i in range(images.shape[0]):
            h, w = (int(v) for v in sizes[i])
            x = images[i : i + 1, :, :h, :w]
            out = self.model(x)
            terms = self.rd_terms(x, out.x_hat, out.likelihoods)
            if terms["ms_ssim"] is None:
                terms["ms_ssim"] = ms_ssim(out.x_hat, x)
            logs = {**terms, "psnr": self.psnr(out.x_hat, x)}
            x_real = None
            if self.pcfg.get("val_real_codec", True):
                x_real, real = self._real_rate(x)
                logs.update(real)
                logs["rate_ratio"] = real["bpp_real"] / terms["bpp_est"].clamp_min(1e-12)
                logs["psnr_real"] = self.psnr(x_real.to(x.device), x)
            self.log_scalars("val", logs, on_step=False, on_epoch=True, batch_size=1)
            if batch_idx == 0 and i == 0:
                grid = [x, out.x_hat] + ([x_real.to(x.device)] if x_real is not None else [])
                self.log_image_grid("val/reconstruction", grid)

    def _real_rate(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        h, w = x.shape[-2:]
        compressed = self.model.compress(x)
        lengths = [len(s[0]) for s in compressed.strings]
        decoded = self.model.decompress(compressed.strings, compressed.shape)
        payload = sum(lengths)
        file_bytes = payload + overhead_bytes(h, w, lengths)
        return decoded.x_hat, {
            "bpp_real": torch.tensor(payload * 8.0 / (h * w), device=x.device),
            "bpp_file": torch.tensor(file_bytes * 8.0 / (h * w), device=x.device),
        }

    # ---- optimisation -------------------------------------------------------------------
    def param_groups(self) -> tuple[list[torch.nn.Parameter], list[torch.nn.Parameter]]:
        """(net, aux): the ``.quantiles`` of the entropy bottleneck vs everything else."""
        named = dict(self.named_parameters())
        aux = [p for n, p in named.items() if n.endswith(".quantiles")]
        net = [p for n, p in named.items() if not n.endswith(".quantiles")]
        ids_net, ids_aux = {id(p) for p in net}, {id(p) for p in aux}
        assert not ids_net & ids_aux, "net and aux parameter groups overlap"
        assert ids_net | ids_aux == {id(p) for p in self.parameters()}, "parameter groups miss parameters"
        assert aux, "the model has no entropy-bottleneck quantiles"
        return net, aux

    def configure_optimizers(self):
        net, aux = self.param_groups()
        p = self.pcfg
        opt = torch.optim.Adam(
            [{"params": net, "lr": float(p.get("lr", 1e-4)), "name": "net"},
             {"params": aux, "lr": float(p.get("aux_lr", 1e-3)), "name": "aux"}]
        )
        milestones = sorted(int(m) for m in p.get("lr_milestones") or [])
        gamma = float(p.get("lr_gamma", 0.1))

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

    # ---- checkpoints ------------------------------------------------------------------
    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        # CDF tables have one shape before update() and another after: match the file's.
        resize_entropy_buffers(self.model, checkpoint.get("state_dict", {}), prefix="model.")
