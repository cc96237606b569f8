"""The common LightningModule base of the four training phases.

A phase wraps plain ``nn.Module`` components (built from the registry) and owns their
losses and optimisers. The base gives every phase its typed config (``self.c``), the
logging helpers (scalars, image grids), the non-finite-loss guard, the count of corrupt
samples skipped by the loader, weights-only initialisation and freezing, the one
optimizer builder, and the validation contract (:meth:`PhaseModule.validation_step`):

    EvalBatch ─ each image x ─ phase.code_val_image(x) ─ real bytes, decoded output(s)
        └─ MetricSuite(x, output) ─ val/bpp, val/psnr, val/ms_ssim, val/lpips, val/dists
                                    (+ ``_fidelity`` for a second output, + the phase's extras)

Checkpoint cadence and the run directory are decided by :func:`hdc_lightning.train.fit`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import lightning as L
import torch
import torchvision
from lightning.pytorch.utilities import rank_zero_warn

from hdc_lightning.codec.api import ModelId, key_parts
from hdc_lightning.codec.container import MODEL_ID_BYTES
from hdc_lightning.config.load import validate_phase
from hdc_lightning.config.schema import PhaseConfig
from hdc_lightning.data.batches import EvalBatch
from hdc_lightning.errors import CheckpointError, ConfigError, HDCError
from hdc_lightning.evaluation.metrics import MetricSuite
from hdc_lightning.models.lic.buffers import is_table, resize_entropy_buffers

# MetricSuite's result keys → the names every phase logs under ``val/``.
VAL_METRICS = {"psnr-rgb": "psnr", "ms-ssim-rgb": "ms_ssim", "lpips": "lpips", "dists": "dists"}
FIDELITY_SUFFIX = "_fidelity"  # the second output of the hybrid codec (x̂_lic)


class ValImage(NamedTuple):
    """What a phase's codec made of one validation image ``x`` [1, 3, h, w]."""

    output: torch.Tensor  # the main decoded output [1, 3, h, w]
    nbytes: int  # real bytes the codec wrote for this image
    extras: Mapping[str, Any]  # phase-specific scalars, logged under their own names
    panels: tuple = ()  # images shown after x in val/reconstruction (default: output)
    fidelity: torch.Tensor | None = None  # a second output, measured with the same metrics


class NonFiniteLossError(HDCError):
    """Too many non-finite losses in a row."""


class PhaseModule(L.LightningModule):
    """Base of LICPretrain, VQCodebook, DRVDiffusion and FusionFinetune.

    Subclasses set ``Config`` (a :class:`PhaseConfig` dataclass, the one place of their
    defaults), build their components in ``__init__`` and implement
    :meth:`code_val_image`; the full resolved config is stored in the checkpoint's
    hyper-parameters (plain types only, so ``weights_only=True`` loading works).
    """

    Config = PhaseConfig

    def __init__(self, cfg: Mapping[str, Any]):
        super().__init__()
        self.save_hyperparameters({"cfg": dict(cfg)})
        self.cfg = dict(cfg)
        self.c = self.Config(**validate_phase(cfg.get("phase", {})))
        self._nonfinite_streak = 0
        self._nonfinite_total = 0
        self._skipped_samples = 0
        self._frozen: set[str] = set()
        self._val_suite: MetricSuite | None = None  # built at the first validation, never saved

    # ---- data -----------------------------------------------------------------------
    def unpack_train_batch(self, batch: Any) -> torch.Tensor:
        """Images from a training batch; counts the corrupt samples the loader skipped."""
        if isinstance(batch, torch.Tensor):
            return batch
        images, skipped = batch[0], batch[1]
        self._skipped_samples += int(torch.as_tensor(skipped).sum())
        self.log("data/skipped_samples", float(self._skipped_samples), on_step=True, reduce_fx="sum", sync_dist=False)
        return images

    # ---- logging --------------------------------------------------------------------
    def log_scalars(self, prefix: str, values: Mapping[str, Any], **kwargs: Any) -> None:
        """Log ``prefix/key`` for each finite value (tensors detached)."""
        kwargs.setdefault("sync_dist", not self.training)
        for key, value in values.items():
            if value is None:
                continue
            v = value.detach().float() if isinstance(value, torch.Tensor) else torch.tensor(float(value))
            if v.numel() == 1 and torch.isfinite(v):
                self.log(f"{prefix}/{key}", v.to(self.device) if v.device != self.device else v, **kwargs)

    def logging_this_step(self) -> bool:
        """Whether this step's ``on_step`` values reach the logger (others are dropped, so
        metrics that cost a host sync are computed only then)."""
        # The same test Lightning's own LearningRateMonitor/DeviceStatsMonitor use.
        connector = getattr(self._trainer, "_logger_connector", None)
        return True if connector is None else bool(connector.should_update_logs)

    def log_image_grid(self, tag: str, images: list[torch.Tensor], nrow: int | None = None) -> None:
        """Write one grid (images side by side, rows = batch) to TensorBoard, rank 0 only."""
        exp = getattr(self.logger, "experiment", None)
        if exp is None or not hasattr(exp, "add_image") or self.global_rank != 0:
            return
        rows = [img[:4].detach().float().clamp(0, 1).cpu() for img in images]
        h = min(r.shape[-2] for r in rows)
        w = min(r.shape[-1] for r in rows)
        stacked = torch.stack([r[..., :h, :w] for r in rows], dim=1).flatten(0, 1)
        grid = torchvision.utils.make_grid(stacked, nrow=nrow or len(rows), padding=2)
        exp.add_image(tag, grid, self.global_step)

    # ---- non-finite guard -----------------------------------------------------------
    def guard_loss(self, loss: torch.Tensor) -> torch.Tensor | None:
        """Return ``loss``, or ``None`` to skip the step when it is non-finite on any rank.

        Stops the run with a clear error after ``run.max_nonfinite_steps`` in a row; the
        last good checkpoint stays in place because skipped steps change no weights.
        """
        bad = not bool(torch.isfinite(loss.detach()).all())
        if self._trainer is not None and self.trainer.world_size > 1:
            bad = self.trainer.strategy.reduce_boolean_decision(bad, all=False)
        if not bad:
            self._nonfinite_streak = 0
            return loss
        self._nonfinite_streak += 1
        self._nonfinite_total += 1
        self.log("train/nonfinite_steps", float(self._nonfinite_total), on_step=True, sync_dist=False)
        limit = int(self.cfg["run"]["max_nonfinite_steps"])
        if self._nonfinite_streak >= limit:
            if self.logger is not None:  # self.log() would be flushed after this step, which never ends
                self.logger.log_metrics({"train/nonfinite_steps": float(self._nonfinite_total)}, step=self.global_step)
            raise NonFiniteLossError(
                f"stopping at step {self.global_step}: {self._nonfinite_streak} non-finite losses in a row "
                f"(run.max_nonfinite_steps={limit}); the last good checkpoint is kept"
            )
        return None

    # ---- staged training: weights from other stages, frozen parts ----------------------
    def _submodule(self, name: str) -> torch.nn.Module:
        try:
            module = self.get_submodule(name)
        except AttributeError:
            children = ", ".join(n for n, _ in self.named_children()) or "(none)"
            raise ConfigError(f"run.init_from/freeze: phase has no module '{name}'; it has: {children}") from None
        return module

    def freeze(self, names: list[str]) -> None:
        """Freeze submodules by attribute path: no gradients, always in eval mode."""
        for name in names:
            module = self._submodule(name)
            module.requires_grad_(False)
            module.eval()
            self._frozen.add(name)

    def train(self, mode: bool = True):
        # Lightning calls .train() at every fit/validation switch; frozen parts stay in eval.
        super().train(mode)
        for name in getattr(self, "_frozen", ()):
            self.get_submodule(name).eval()
        return self

    def init_from(self, sources: Mapping[str, Mapping[str, Any]]) -> list[str]:
        """Load weights-only ``{attr: {ckpt, prefix}}`` from earlier stages; returns a report.

        Missing and unexpected keys are reported loudly (rank-zero warning); a shape
        mismatch or a prefix that matches nothing is an error naming the checkpoint.
        """
        from hdc_lightning.checkpoints import load_state_dict

        report = []
        for attr, src in flatten_sources(sources).items():
            if not isinstance(src, Mapping) or "ckpt" not in src:
                raise ConfigError(f"run.init_from.{attr}: expected {{ckpt: PATH, prefix: KEY_PREFIX}}")
            module = self._submodule(attr)
            state = load_state_dict(src["ckpt"], src.get("prefix", ""))
            own = module.state_dict()
            if not set(state) & set(own):  # nothing would load: another model, not a partial match
                raise CheckpointError(
                    f"{src['ckpt']}: none of its {len(state)} tensors under '{src.get('prefix', '')}' is a weight of "
                    f"module '{attr}' (e.g. '{next(iter(state))}'); another model?"
                )
            for key, value in state.items():
                if key in own and own[key].shape != value.shape and not is_table(key):
                    raise CheckpointError(
                        f"{src['ckpt']}: '{src.get('prefix', '')}{key}' has shape {tuple(value.shape)}, "
                        f"module '{attr}' expects {tuple(own[key].shape)} (another model or preset?)"
                    )
            resize_entropy_buffers(module, state)  # an earlier stage's CDF tables load at their own shape
            result = module.load_state_dict(state, strict=False)
            line = (
                f"init_from {attr} <- {src['ckpt']} [{src.get('prefix', '')}]: {len(state)} tensors, "
                f"missing {len(result.missing_keys)}, unexpected {len(result.unexpected_keys)}"
            )
            report.append(line)
            keys = _key_list("missing", result.missing_keys) + _key_list("unexpected", result.unexpected_keys)
            rank_zero_warn(line + keys)
        return report

    # ---- optimisation -----------------------------------------------------------------
    def build_optimizer(self, groups: list[dict], **adam: Any) -> torch.optim.Adam:
        """One Adam over named groups that split the trainable parameters exactly.

        Every phase builds its optimizer here, so the check is written once: no parameter
        in two groups (it would get two updates), none left out (it would never learn).
        Empty groups (parts an ablation switched off) are dropped.
        """
        groups = [g for g in groups if g["params"]]
        ids = [id(p) for g in groups for p in g["params"]]
        trainable = {id(p) for p in self.parameters() if p.requires_grad}
        if len(ids) != len(set(ids)) or set(ids) != trainable:
            names = ", ".join(g.get("name", "?") for g in groups)
            raise AssertionError(f"optimizer groups ({names}) must split the trainable parameters exactly")
        return torch.optim.Adam(groups, **adam)

    # ---- validation: one contract for every phase ---------------------------------------
    def code_val_image(self, x: torch.Tensor) -> ValImage:
        """Encode ``x`` [1, 3, h, w] with the phase's codec and decode it (real bytes)."""
        raise NotImplementedError

    def val_codec(self, codec_cls: type, **options: Any) -> Any:
        """The phase's codec around ``self.model`` as it is now (call after ``update()``).

        Its model id is a placeholder: these files never leave the validation step.
        """
        model_id = ModelId(str(self.cfg["model"].get("name")), None, bytes(MODEL_ID_BYTES))
        return codec_cls(self.model, model_id, device=str(self.device), **options)

    def val_metrics(self, x: torch.Tensor, y: torch.Tensor, suffix: str = "") -> dict[str, float]:
        """The shared quality metrics of ``y`` against ``x`` under their ``val/`` names."""
        values = self.val_suite()(x[0], y[0].to(x.device))
        return {self.val_name(k) + suffix: v for k, v in values.items()}

    def val_suite(self) -> MetricSuite:
        """The validation metrics (the RD/RP figure measures the classical codecs with it too)."""
        if self._val_suite is None:
            self._val_suite = MetricSuite(
                lpips=True,
                dists=self.c.val_dists,
                lpips_net=self.c.val_lpips_net,
                device=str(self.device),
                lpips_random_backbone=self.c.lpips_random_backbone,
            )
        return self._val_suite

    def val_name(self, key: str) -> str:
        """``val/`` name of a MetricSuite key; a random LPIPS trunk is not LPIPS and says so."""
        name = VAL_METRICS.get(key, key)
        return "lpips_random_trunk" if name == "lpips" and self.c.lpips_random_backbone else name

    def validation_step(self, batch: EvalBatch, batch_idx: int) -> dict[str, list]:
        """Logs the contract for each image; returns ``{names, bpp}`` for the RD/RP figure."""
        names, rates = [], []
        for i, name in enumerate(batch.names):
            h, w = (int(v) for v in batch.sizes[i])
            x = batch.images[i : i + 1, :, :h, :w]
            # The codec and the metrics run in float32 under any trainer precision, as `hdc compress` does.
            with torch.autocast(self.device.type, enabled=False):
                coded = self.code_val_image(x)
                logs = {"bpp": 8.0 * coded.nbytes / (h * w), **self.val_metrics(x, coded.output)}
                if coded.fidelity is not None:
                    logs.update(self.val_metrics(x, coded.fidelity, FIDELITY_SUFFIX))
            logs.update(coded.extras)
            self.log_scalars("val", logs, on_step=False, on_epoch=True, batch_size=1)
            names.append(str(name))
            rates.append(logs["bpp"])
            if batch_idx == 0 and i == 0:
                self.log_image_grid("val/reconstruction", [x, *(coded.panels or (coded.output,))])
        return {"names": names, "bpp": rates}

    # ---- checkpoint extras ----------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["hdc"] = {
            "nonfinite_total": self._nonfinite_total,
            "skipped_samples": self._skipped_samples,
            "phase": self.c.name,
            "model": dict(self.cfg["model"]),
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("state_dict", {})
        own = set(self.state_dict())
        missing, unexpected = key_parts(own - set(state)), key_parts(set(state) - own)
        if missing or unexpected:  # Lightning's strict load would say it in a traceback
            what = "; ".join(f"{k} {', '.join(v)}" for k, v in (("missing", missing), ("unexpected", unexpected)) if v)
            raise CheckpointError(
                f"{getattr(self._trainer, 'ckpt_path', None) or 'checkpoint'}: cannot resume from it, its weights do not fit this phase ({what}); "
                "written by another hdc version or model? start the stage afresh (run.overwrite=true) or take its "
                "weights with run.init_from"
            )
        # CDF tables have one shape before update() and another after: match the file's.
        resize_entropy_buffers(self, state)
        extra = checkpoint.get("hdc", {})
        self._nonfinite_total = int(extra.get("nonfinite_total", 0))
        self._skipped_samples = int(extra.get("skipped_samples", 0))


def flatten_sources(sources: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{model: {lic: {ckpt, prefix}}}`` → ``{"model.lic": {ckpt, prefix}}``.

    Dotted attribute names given as CLI/pipeline overrides (``run.init_from.model.lic.ckpt=…``)
    arrive nested; this turns them back into attribute paths.
    """
    out: dict[str, Any] = {}
    for key, value in sources.items():
        path = f"{prefix}{key}"
        nested = isinstance(value, Mapping) and value and "ckpt" not in value
        if isinstance(value, Mapping) and "ckpt" in value:
            parts = [k for k, v in value.items() if isinstance(v, Mapping)]
            if parts:  # the part's source would be dropped silently, or override in an unclear order
                raise ConfigError(
                    f"run.init_from.{path}: one source for the whole module and others for its parts "
                    f"({', '.join(parts)}) at once; give each part its own source"
                )
        if nested and all(isinstance(v, Mapping) for v in value.values()):
            out.update(flatten_sources(value, path + "."))
        else:
            out[path] = value
    return out


def _key_list(label: str, keys: list[str], limit: int = 8) -> str:
    if not keys:
        return ""
    more = f" … (+{len(keys) - limit})" if len(keys) > limit else ""
    return f"\n  {label}: " + ", ".join(keys[:limit]) + more
