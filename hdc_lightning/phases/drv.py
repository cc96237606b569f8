"""Phase 3, ``drv``: the DRV diffusion, with the LIC and VQ streams frozen.

Step 1 (``global_step < phase.denoise_start``): the extractor learns ground-truth DRVs
from (x̂, x) together with the modules they steer: enhancer (L1/MSE of x̂_lic against x),
index predictor T (cross-entropy on the masked positions of training masks) and VQ
correction (L1, + LPIPS with ``perceptual_weight``, of x̃). Step 2: the denoising
networks learn to reproduce those DRVs from x̂ alone (4-step unrolled chain, L1 + KL,
:class:`~hdc_lightning.losses.drv.DRVMatchLoss`). In step 2 the extractor is frozen: it
is the teacher, and a moving target would also drift away from the DRVs the fusion
modules were trained on. ``joint_fusion=true`` keeps training enhancer, T and correction
in step 2 on the unrolled DRVs (DiffIR's joint stage-2); by default they wait for phase 4.

One optimizer (Adam) with one parameter group per part (fusion, extractor, sampler), one
backward and one ``optimizer.step()`` per batch, so ``global_step`` counts batches. Parts
that rest in a step still enter the loss with weight zero (every trainable parameter gets
a gradient, DDP needs no ``find_unused_parameters``), and their gradients are dropped
(set to None) before the optimizer step, so Adam leaves them exactly as they are, with no
momentum drift. The shared base :class:`HybridPhase` (also used by phase 4) holds the
fusion losses, the init checks and validation with real compress/decompress.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from hdc_lightning import registry
from hdc_lightning.codec.container import overhead_bytes
from hdc_lightning.config.load import validate_phase
from hdc_lightning.config.schema import PhaseConfig
from hdc_lightning.errors import ConfigError
from hdc_lightning.losses.drv import DRVMatchLoss
from hdc_lightning.models.fusion import masked_accuracy, masked_cross_entropy
from hdc_lightning.models.lic import pad_image, resize_entropy_buffers
from hdc_lightning.phases.base import PhaseModule, flatten_sources

PARAMS_BYTES = 7  # the hybrid codec's header parameters (codec.hybrid), for bpp_file


@dataclass
class HybridPhaseConfig(PhaseConfig):
    lr: float = 2e-4  # enhancer, predictor T, correction
    enhancer_loss: str = "l1"  # l1 | mse (x̂_lic against x)
    enhancer_weight: float = 1.0
    index_weight: float = 1.0  # masked cross-entropy of T
    label_smoothing: float = 0.0
    correction_weight: float = 1.0  # L1 of x̃ against x
    perceptual_weight: float = 0.0  # LPIPS of x̃ (needs the backbone weights, see losses/perceptual.py)
    lpips_net: str = "alex"
    lpips_random_backbone: bool = False  # tests/offline smoke runs only
    lpips_backbone: Optional[str] = None
    reveal_max: float = 0.0  # training masks also reveal up to this share of other tokens (for T steps > 1)
    detach_lic: bool = True  # T and correction read x̂_lic without back-propagating into the enhancer
    allow_random_init: bool = False  # tests only: train without loading LIC/VQ (and earlier) weights
    val_mask: str = "auto"  # mask mode of the real compress at validation
    image_every: int = 200  # batches between training image grids (0: never)


@dataclass
class DRVConfig(HybridPhaseConfig):
    name: str = "drv"
    sampler_lr: float = 2e-4  # denoising networks (step 2)
    denoise_start: int = 1000  # batches of step 1; step 2 runs from here to trainer.max_steps
    joint_fusion: bool = False  # step 2 also trains enhancer/T/correction on the unrolled DRVs
    match_l1_weight: float = 1.0
    match_kl_weight: float = 1.0
    match_temperature: float = 0.15


def touch(*modules) -> Tensor | float:
    """0 × (sum of the parameters): keeps resting parts in the graph for DDP, changes nothing."""
    terms = [p.sum() for m in modules if m is not None for p in m.parameters() if p.requires_grad]
    return 0.0 * sum(terms) if terms else 0.0


def psnr(a: Tensor, b: Tensor) -> Tensor:
    mse = F.mse_loss(a.detach().float().clamp(0, 1), b.float())
    return -10 * torch.log10(mse.clamp_min(1e-10))


class HybridPhase(PhaseModule):
    """What phases 3 and 4 share: the ``hdc`` model at ``self.model``, fusion losses, validation."""

    Config = HybridPhaseConfig
    needs = ("model.lic", "model.vq")  # parts that must come from earlier stages

    def __init__(self, cfg: Mapping[str, Any]):
        super().__init__(cfg)
        self.c = self.Config(**validate_phase(self.pcfg))
        if self.c.enhancer_loss not in ("l1", "mse"):
            raise ConfigError(f"phase.enhancer_loss: '{self.c.enhancer_loss}' is not one of l1, mse")
        if cfg.get("model", {}).get("name") != "hdc":
            raise ConfigError(f"model.name: phase '{self.c.name}' trains the hybrid model 'hdc', got '{cfg['model'].get('name')}'")
        crop = cfg.get("data", {}).get("train", {}).get("crop")
        if crop is not None and int(crop) % 16:
            raise ConfigError(f"data.train.crop: phase '{self.c.name}' needs a multiple of 16 (the VQ token size), got {crop}")
        self.model = registry.build_spec("model", cfg["model"], "model")
        self._check_initialised()
        self.freeze(["model.lic", "model.vq"])
        self.perceptual = None
        if self.c.perceptual_weight > 0:
            from hdc_lightning.losses.perceptual import PerceptualLoss

            self.perceptual = PerceptualLoss(self.c.lpips_net, self.c.lpips_random_backbone, self.c.lpips_backbone)

    # ---- staged training ---------------------------------------------------------------
    def _needed(self) -> list[str]:
        return list(self.needs)

    def _check_initialised(self) -> None:
        """Refuse to train on random LIC/VQ weights unless the config says so on purpose."""
        run = self.cfg.get("run", {})
        if self.c.allow_random_init or run.get("resume"):
            return
        sources = flatten_sources(run.get("init_from") or {})
        missing = [n for n in self._needed() if not any(n == k or n.startswith(k + ".") for k in sources)]
        if missing:
            first = missing[0]
            raise ConfigError(
                f"run.init_from: phase '{self.c.name}' needs trained weights for {', '.join(missing)} "
                f"(e.g. run.init_from.{first}.ckpt=runs/<stage>/checkpoints/last.ckpt run.init_from.{first}.prefix=model.; "
                "see experiments/pipeline/tiny.yaml), or phase.allow_random_init=true for smoke tests"
            )

    def init_from(self, sources: Mapping[str, Mapping[str, Any]]) -> list[str]:
        return super().init_from(flatten_sources(sources))

    def freeze(self, names: list[str]) -> None:
        # Parts switched off by an ablation (None) have nothing to freeze.
        super().freeze([n for n in names if _resolve(self, n) is not None])

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        resize_entropy_buffers(self.model, checkpoint.get("state_dict", {}), prefix="model.")

    # ---- losses ------------------------------------------------------------------------
    def fusion_losses(self, x: Tensor, out) -> tuple[Tensor, dict[str, Any]]:
        c = self.c
        rec_fn = F.l1_loss if c.enhancer_loss == "l1" else F.mse_loss
        rec = rec_fn(out.x_hat_lic, x)
        ce = masked_cross_entropy(out.logits, out.indices, out.sent, c.label_smoothing)
        corr = F.l1_loss(out.x_tilde, x)
        loss = c.enhancer_weight * rec + c.index_weight * ce + c.correction_weight * corr
        perc = None
        if self.perceptual is not None:
            perc = self.perceptual(out.x_tilde, x)
            loss = loss + c.perceptual_weight * perc
        terms = {
            "enhancer_loss": rec, "index_ce": ce, "correction_l1": corr, "lpips": perc,
            "index_acc": masked_accuracy(out.logits, out.indices, out.sent),
            "psnr_x_hat": psnr(out.x_hat, x), "psnr_x_hat_lic": psnr(out.x_hat_lic, x),
            "psnr_x_tilde": psnr(out.x_tilde, x),
        }
        return loss, terms

    def maybe_log_images(self, x: Tensor, out) -> None:
        if self.c.image_every > 0 and self.global_step % self.c.image_every == 0:
            self.log_image_grid("train/reconstruction", [x, out.x_hat, out.x_hat_lic, out.x_tilde])

    # ---- optimisation: rest = gradients dropped before the step -------------------------
    def param_groups(self) -> list[dict]:
        raise NotImplementedError

    def resting_groups(self) -> set[str]:
        return set()

    def configure_optimizers(self):
        groups = [g for g in self.param_groups() if g["params"]]
        ids = [id(p) for g in groups for p in g["params"]]
        trainable = {id(p) for p in self.parameters() if p.requires_grad}
        assert len(ids) == len(set(ids)) and set(ids) == trainable, "parameter groups must split the trainable parameters"
        return torch.optim.Adam(groups)

    def on_before_optimizer_step(self, optimizer) -> None:
        resting = self.resting_groups()
        for group in optimizer.param_groups:
            if group.get("name") in resting:
                for p in group["params"]:
                    p.grad = None  # Adam skips parameters without a gradient: no update, no state change

    # ---- validation: real bytes, both outputs --------------------------------------------
    def on_validation_epoch_start(self) -> None:
        self.model.update(force=True)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        images, sizes = batch[0], batch[1]
        h, w = (int(v) for v in sizes[0])
        x = images[:1, :, :h, :w]
        m = self.model
        comp = m.compress(x, self.c.val_mask)
        dec = m.decompress(comp.lic_strings, comp.schedule, comp.indices, comp.shape, comp.seed, comp.steps)
        lengths = [len(s) for s in comp.lic_strings] + [len(comp.schedule), len(comp.indices)]
        px = h * w
        xp = pad_image(x, 16)
        truth = m.vq.encode_indices(xp)[0]
        missing = ~dec.sent.to(truth.device)
        logs = {
            "psnr_x_hat": psnr(dec.x_hat, x), "psnr_x_hat_lic": psnr(dec.x_hat_lic, x), "psnr_x_tilde": psnr(dec.x_tilde, x),
            "bpp_lic": 8.0 * sum(lengths[:-2]) / px, "bpp_schedule": 8.0 * lengths[-2] / px,
            "bpp_indices": 8.0 * lengths[-1] / px, "bpp": 8.0 * sum(lengths) / px,
            "bpp_file": 8.0 * (sum(lengths) + overhead_bytes(h, w, lengths, PARAMS_BYTES)) / px,
            "index_acc": (dec.d_hat[0] == truth)[missing].float().mean() if missing.any() else None,
            "sent_share": dec.sent.float().mean(),
        }
        if m.extractor is not None:
            gt = m.extract(pad_image(dec.x_hat, 16), xp)
            errs = [F.l1_loss(dec.drvs.get(n), gt.get(n)) for n in m.drv_names]
            logs["drv_l1"] = sum(errs) / len(errs)
        if self.perceptual is not None:
            key = "lpips_random_trunk" if self.c.lpips_random_backbone else "lpips"
            logs[f"{key}_x_tilde"] = self.perceptual(dec.x_tilde, x)
            logs[f"{key}_x_hat_lic"] = self.perceptual(dec.x_hat_lic, x)
        self.log_scalars("val", logs, on_step=False, on_epoch=True, batch_size=1)
        if batch_idx == 0:
            self.log_image_grid("val/reconstruction", [x, dec.x_hat, dec.x_hat_lic, dec.x_tilde])


def _resolve(module, path: str):
    for part in path.split("."):
        module = getattr(module, part, None)
        if module is None:
            return None
    return module


@registry.register("phase", "drv")
class DRVDiffusion(HybridPhase):
    """Phase 3: ground-truth DRVs with the fusion modules (step 1), then the denoisers (step 2)."""

    Config = DRVConfig

    def __init__(self, cfg: Mapping[str, Any]):
        super().__init__(cfg)
        c = self.c
        self.match = DRVMatchLoss(c.match_l1_weight, c.match_kl_weight, c.match_temperature)

    def in_step2(self) -> bool:
        return self.model.sampler is not None and self.global_step >= self.c.denoise_start

    def param_groups(self) -> list[dict]:
        m, c = self.model, self.c
        fusion = [p for mod in (m.enhancer, m.predictor, m.correction) if mod is not None for p in mod.parameters()]
        groups = [{"params": [p for p in fusion if p.requires_grad], "lr": c.lr, "name": "fusion"}]
        if m.extractor is not None:
            groups.append({"params": [p for p in m.extractor.parameters() if p.requires_grad], "lr": c.lr, "name": "extractor"})
            groups.append({"params": [p for p in m.sampler.parameters() if p.requires_grad], "lr": c.sampler_lr, "name": "sampler"})
        return groups

    def resting_groups(self) -> set[str]:
        if not self.in_step2():
            return {"sampler"}
        return {"extractor"} if self.c.joint_fusion else {"extractor", "fusion"}

    def training_step(self, batch: Any, batch_idx: int) -> Tensor | None:
        x = self.unpack_train_batch(batch)
        m = self.model
        b, _, h, w = x.shape
        sent = m.training_masks(b, h // 16, w // 16, x.device, self.c.reveal_max)
        x_hat = m.base_reconstruction(x)
        if not self.in_step2():
            out = m.fuse(x, x_hat, m.extract(x_hat, x), sent, detach_lic=self.c.detach_lic)
            loss, logs = self.fusion_losses(x, out)
            loss = loss + touch(m.sampler)
        else:
            with torch.no_grad():
                target = m.extract(x_hat, x)
            pred = m.unroll_drvs(x_hat, target)
            matches = [self.match(pred.get(n), target.get(n)) for n in m.drv_names]
            loss = sum(t.loss for t in matches) + touch(m.extractor)
            logs = {"drv_l1": sum(t.l1 for t in matches) / len(matches), "drv_kl": sum(t.kl for t in matches) / len(matches)}
            out = None
            if self.c.joint_fusion:
                out = m.fuse(x, x_hat, pred, sent, detach_lic=self.c.detach_lic)
                fusion_loss, fusion_logs = self.fusion_losses(x, out)
                loss, logs = loss + fusion_loss, {**logs, **fusion_logs}
            else:
                loss = loss + touch(m.enhancer, m.predictor, m.correction)
        loss = self.guard_loss(loss)
        if loss is None:
            return None
        self.log_scalars("train", {**logs, "loss": loss, "step2": float(self.in_step2())}, on_step=True, on_epoch=False, batch_size=b)
        if not self.in_step2() or self.c.joint_fusion:
            self.maybe_log_images(x, out)
        return loss
