"""The base of phases 3 (``drv``) and 4 (``fusion``): the ``hdc`` model trained in stages.

Both phases train through the model's own forward (:meth:`HDCModel.forward`) and differ
only in the rows of :data:`STAGES` they use — which DRVs the forward computes, which
optimizer groups exist and which of them learn. The table is the one place that says
what a stage trains; everything else follows from it:

* trained:  the modules of the stage's ``trains`` groups;
* resting:  the other groups of the phase — kept in the graph with weight zero (every
  trainable parameter takes part in every backward, so DDP needs no
  ``find_unused_parameters``) and their gradients dropped before the step, so Adam
  leaves them exactly as they are;
* frozen:   every module of the model in none of the phase's groups — no gradient and
  always in eval mode (the LIC stream, the VQ encoder/codebook/prior, …).

One optimizer (Adam), one backward and one ``optimizer.step()`` per batch, so
``global_step`` counts batches. Validation encodes and decodes with the hybrid codec
itself (:class:`~hdc_lightning.codec.hybrid.HybridCodec`) and measures both outputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from hdc_lightning import registry
from hdc_lightning.codec.hybrid import HybridCodec
from hdc_lightning.config.schema import PhaseConfig
from hdc_lightning.errors import ConfigError
from hdc_lightning.evaluation.metrics import psnr_rgb
from hdc_lightning.models.contracts import HybridModel, check_contract
from hdc_lightning.models.hybrid import TOKEN
from hdc_lightning.models.lic import pad_image
from hdc_lightning.phases.base import PhaseModule, ValImage, flatten_sources

# Optimizer group → (module paths under the hdc model, the config field with its lr).
GROUPS = {
    "fusion": (("enhancer", "predictor", "correction", "perceptual"), "lr"),
    "extractor": (("extractor",), "lr"),
    "sampler": (("sampler",), "sampler_lr"),
    "decoder": (("sampler", "vq.g_s", "vq.post_quant"), "e2e_lr"),  # fusion end to end: decode side only
}
# The VQ decoder decodes x̃ only in the latent-only ablation; with the perceptual decoder
# (already in the fusion group) it stays the VQ stream's own, frozen.
LATENT_ONLY = ("vq.g_s", "vq.post_quant")


@dataclass(frozen=True)
class Stage:
    drvs: str  # drv_source of HDCModel.forward: extracted | unrolled | sampled
    groups: tuple[str, ...]  # the phase's optimizer groups (the same in every stage of a phase)
    trains: tuple[str, ...]  # groups that learn in this stage; the others rest
    losses: tuple[str, ...]  # "fusion" (enhancer, T, correction) and/or "match" (denoisers)


DRV_GROUPS = ("fusion", "extractor", "sampler")
STAGES = {
    # phase 3, step 1: ground-truth DRVs from (x̂, x) steer the fusion modules they learn with
    "drv/extract": Stage("extracted", DRV_GROUPS, ("fusion", "extractor"), ("fusion",)),
    # phase 3, step 2: the denoisers learn the frozen extractor's DRVs from x̂ alone
    "drv/denoise": Stage("unrolled", DRV_GROUPS, ("sampler",), ("match",)),
    # … with joint_fusion: the fusion modules also learn on the unrolled DRVs (DiffIR's stage 2)
    "drv/denoise+fusion": Stage("unrolled", DRV_GROUPS, ("sampler", "fusion"), ("match", "fusion")),
    # phase 4: the fusion modules on the DRVs the decoder samples
    "fusion": Stage("sampled", ("fusion",), ("fusion",), ("fusion",)),
    # … end to end: also the denoisers and the VQ decoder (the index stream is unchanged)
    "fusion/end_to_end": Stage("sampled", ("fusion", "decoder"), ("fusion", "decoder"), ("fusion",)),
}


@dataclass
class HybridPhaseConfig(PhaseConfig):
    lr: float = 2e-4  # enhancer, predictor T, correction
    enhancer_loss: str = "l1"  # l1 | mse (x̂_lic against x)
    enhancer_weight: float = 1.0
    index_weight: float = 1.0  # masked cross-entropy of T
    label_smoothing: float = 0.0
    correction_loss: str = "l1"  # l1 | mse: the fidelity term of x̃ against x
    correction_weight: float = 1.0  # its weight (images in [0, 1])
    perceptual_weight: float = 0.5  # LPIPS of x̃ (the trunk `hdc weights` makes); 0 trains without it
    # Conditional GAN on x̃ (losses/adversarial.py): + adversarial_weight·a·(−D(x̃ | x̂_lic)) per
    # example at realism level a (1 without a realism-conditioned decoder); 0 trains without it.
    adversarial_weight: float = 0.0
    adversarial_start: int = 0  # batches in which D learns alone before the generator term starts
    disc_lr: float = 1e-4
    disc_channels: int = 64
    lpips_net: str = "alex"
    lpips_backbone: str | None = None
    reveal_max: float = 0.0  # training masks also reveal up to this share of other tokens (for T steps > 1)
    detach_lic: bool = True  # T and correction read x̂_lic without back-propagating into the enhancer
    allow_random_init: bool = False  # tests only: train without loading LIC/VQ (and earlier) weights
    image_every: int = 200  # batches between training image grids (0: never)


def touch(*modules) -> Tensor | float:
    """0 × (sum of the parameters): keeps resting parts in the graph for DDP, changes nothing."""
    terms = [p.sum() for m in modules if m is not None for p in m.parameters() if p.requires_grad]
    return 0.0 * sum(terms) if terms else 0.0


class HybridPhase(PhaseModule):
    """What phases 3 and 4 share: the ``hdc`` model at ``self.model``, trained per :data:`STAGES`."""

    Config = HybridPhaseConfig
    needs: tuple[str, ...] = ()  # parts that must come from earlier stages (run.init_from)

    def __init__(self, cfg: Mapping[str, Any]):
        super().__init__(cfg)
        c = self.c
        self.loss = registry.build_from("loss", "fusion", c, where="phase")
        crop = cfg["data"]["train"].get("crop")
        if crop is not None and int(crop) % TOKEN:
            raise ConfigError(
                f"data.train.crop: phase '{c.name}' needs a multiple of {TOKEN} (the VQ token size), got {crop}"
            )
        self.model = registry.build_spec("model", cfg["model"], "model")
        check_contract(self.model, HybridModel, c.name, cfg["model"].get("name"))
        self._check_initialised()
        self._freeze_outside_groups()
        self._codec: HybridCodec | None = None

    # ---- the stage table, applied ----------------------------------------------------------
    def stage(self) -> Stage:
        """The row of :data:`STAGES` this batch trains with."""
        raise NotImplementedError

    def group_modules(self, group: str) -> list[torch.nn.Module]:
        paths = GROUPS[group][0]
        if getattr(self.model, "perceptual", None) is not None:
            paths = tuple(p for p in paths if p not in LATENT_ONLY)
        return [m for m in (_resolve(self.model, p) for p in paths) if m is not None]

    def _freeze_outside_groups(self) -> None:
        """Freeze (no grad, eval) every largest submodule of the model that no group trains."""
        trained = {id(p) for g in self.stage().groups for m in self.group_modules(g) for p in m.parameters()}

        def visit(module: torch.nn.Module, path: str) -> list[str]:
            own = [id(p) for p in module.parameters()]
            if not own:  # no weights (activations, the mask policy): its train/eval mode is its parent's
                return []
            if not any(i in trained for i in own):
                return [path]
            return [q for name, child in module.named_children() for q in visit(child, f"{path}.{name}")]

        self.freeze(visit(self.model, "model"))

    def resting(self, stage: Stage) -> list[str]:
        return [g for g in stage.groups if g not in stage.trains]

    def configure_optimizers(self):
        groups = []
        for name in self.stage().groups:
            params = {id(p): p for m in self.group_modules(name) for p in m.parameters() if p.requires_grad}
            groups.append({"params": list(params.values()), "lr": getattr(self.c, GROUPS[name][1]), "name": name})
        if self.loss.adversarial is not None:  # the loss's discriminator: trained here, never exported
            groups.append(
                {"params": list(self.loss.adversarial.parameters()), "lr": self.c.disc_lr, "name": "discriminator"}
            )
        return self.build_optimizer(groups)

    def on_before_optimizer_step(self, optimizer) -> None:
        resting = set(self.resting(self.stage()))
        for group in optimizer.param_groups:
            if group.get("name") in resting:
                for p in group["params"]:
                    p.grad = None  # Adam skips parameters without a gradient: no update, no state change

    # ---- staged training: where the weights come from ----------------------------------------
    def _check_initialised(self) -> None:
        """Refuse to train on random LIC/VQ weights unless the config says so on purpose."""
        run = self.cfg["run"]
        if self.c.allow_random_init or run["resume"]:
            return
        sources = flatten_sources(run["init_from"] or {})
        needed = [n for n in self.needs if _resolve(self, n) is not None]
        missing = [n for n in needed if not any(n == k or n.startswith(k + ".") for k in sources)]
        if missing:
            first = missing[0]
            raise ConfigError(
                f"run.init_from: phase '{self.c.name}' needs trained weights for {', '.join(missing)} "
                f"(e.g. run.init_from.{first}.ckpt=runs/<stage>/checkpoints/last.ckpt "
                f"run.init_from.{first}.prefix=model.; "
                "see experiments/pipeline/tiny.yaml), or phase.allow_random_init=true for smoke tests"
            )

    def freeze(self, names: list[str]) -> None:
        # Parts switched off by an ablation (None) have nothing to freeze.
        super().freeze([n for n in names if _resolve(self, n) is not None])

    def init_from(self, sources: Mapping[str, Mapping[str, Any]]) -> list[str]:
        # … nor anything to load (one recipe serves every ablation point); typos still fail.
        return super().init_from({a: s for a, s in flatten_sources(sources).items() if not _switched_off(self, a)})

    # ---- training: one forward, the stage's losses --------------------------------------------
    def drv_seed(self) -> int | None:
        """Seed of sampled DRVs (None: the model's default seed)."""
        return None

    def training_step(self, batch: Any, batch_idx: int) -> Tensor | None:
        x = self.unpack_train_batch(batch)
        stage, c = self.stage(), self.c
        out = self.model(
            x,
            drv_source=stage.drvs,
            seed=self.drv_seed(),
            reveal_max=c.reveal_max,
            detach_lic=c.detach_lic,
            fuse="fusion" in stage.losses,
            realism=self.sample_realism(x),
        )
        loss, logs = self.stage_losses(stage, x, out)
        resting = [m for g in self.resting(stage) for m in self.group_modules(g)]
        if out.x_tilde is None:  # no x̃ in this stage: the discriminator rests with the rest
            resting.append(self.loss.adversarial)
        loss = loss + touch(*resting)
        loss = self.guard_loss(loss)
        if loss is None:
            return None
        self.log_scalars("train", {**logs, "loss": loss}, on_step=True, on_epoch=False, batch_size=x.shape[0])
        if out.x_tilde is not None and c.image_every > 0 and self.global_step % c.image_every == 0:
            self.log_image_grid("train/reconstruction", [x, out.x_hat, out.x_hat_lic, out.x_tilde])
        return loss

    def sample_realism(self, x: Tensor) -> Tensor | None:
        """One realism level a ~ U[0, 1] per example for a realism-conditioned decoder: its LPIPS
        term is weighted by a, so it learns every level from MSE-only (a = 0) to full (a = 1)."""
        if not self.model.learned_realism:
            return None
        return torch.rand(x.shape[0], device=x.device)

    def stage_losses(self, stage: Stage, x: Tensor, out) -> tuple[Tensor, dict[str, Any]]:
        return self.fusion_losses(x, out)

    def fusion_losses(self, x: Tensor, out) -> tuple[Tensor, dict[str, Any]]:
        loss, terms = self.loss(x, out, self.global_step)
        if self.logging_this_step():
            terms.update(
                psnr_x_hat=psnr_rgb(x, out.x_hat),
                psnr_x_hat_lic=psnr_rgb(x, out.x_hat_lic),
                psnr_x_tilde=psnr_rgb(x, out.x_tilde),
            )
        return loss, terms

    # ---- validation: the hybrid codec's own files, both outputs ---------------------------------
    def on_validation_epoch_start(self) -> None:
        self.model.update(force=True)
        # threads=None: the bytes do not depend on the thread count, only bit-exact pixels do.
        self._codec = self.val_codec(HybridCodec, threads=None)

    def code_val_image(self, x: Tensor) -> ValImage:
        h, w = x.shape[-2:]
        data = self._codec.encode(x[0])
        header, dec = self._codec.decode_full(data)
        streams = dict(zip(self._codec.stream_names(), header.stream_lengths))
        lic_bytes = sum(n for k, n in streams.items() if k not in ("schedule", "indices"))
        m, xp = self.model, pad_image(x, TOKEN)
        truth = m.vq.encode_indices(xp)[0]
        missing = ~dec.sent.to(truth.device)
        extras = {
            "bpp_lic": 8.0 * lic_bytes / (h * w),
            "bpp_schedule": 8.0 * streams["schedule"] / (h * w),
            "bpp_indices": 8.0 * streams["indices"] / (h * w),
            "psnr_x_hat": psnr_rgb(x, dec.x_hat),
            "index_acc": (dec.d_hat[0] == truth)[missing].float().mean() if missing.any() else None,
            "sent_share": dec.sent.float().mean(),
        }
        if m.extractor is not None:
            gt = m.extract(pad_image(dec.x_hat, TOKEN), xp)
            extras["drv_l1"] = sum(F.l1_loss(dec.drvs.get(n), gt.get(n)) for n in m.drv_names) / len(m.drv_names)
        x_tilde, x_hat_lic = dec.x_tilde.clamp(0, 1), dec.x_hat_lic.clamp(0, 1)
        return ValImage(x_tilde, len(data), extras, (dec.x_hat, x_hat_lic, x_tilde), fidelity=x_hat_lic)


def _switched_off(module, path: str) -> bool:
    """Whether ``path`` goes through a part that exists as None (an ablation switched it off)."""
    for part in path.split("."):
        if not hasattr(module, part):
            return False
        module = getattr(module, part)
        if module is None:
            return True
    return False


def _resolve(module, path: str):
    for part in path.split("."):
        module = getattr(module, part, None)
        if module is None:
            return None
    return module
