"""The common LightningModule base of the four training phases.

A phase wraps plain ``nn.Module`` components (built from the registry) and owns their
losses and optimisers. The base gives every phase the same logging helpers (scalars,
image grids), the non-finite-loss guard, and the count of corrupt data samples skipped
by the loader. Checkpoint cadence and the run directory are decided by
:func:`hdc_lightning.train.fit`, not here.
"""

from __future__ import annotations

from typing import Any, Mapping

import lightning as L
import torch
import torchvision

from hdc_lightning.config.schema import PhaseConfig
from lightning.pytorch.utilities import rank_zero_warn

from hdc_lightning.errors import CheckpointError, ConfigError, HDCError


class NonFiniteLossError(HDCError):
    """Too many non-finite losses in a row."""


class PhaseModule(L.LightningModule):
    """Base of LICPretrain, VQCodebook, DRVDiffusion and FusionFinetune.

    Subclasses set ``Config`` (a :class:`PhaseConfig` dataclass) and build their
    components from ``self.cfg``; the full resolved config is stored in the checkpoint's
    hyper-parameters (plain types only, so ``weights_only=True`` loading works).
    """

    Config = PhaseConfig

    def __init__(self, cfg: Mapping[str, Any]):
        super().__init__()
        self.save_hyperparameters({"cfg": dict(cfg)})
        self.cfg = dict(cfg)
        self.pcfg = dict(cfg.get("phase", {}))
        self._nonfinite_streak = 0
        self._nonfinite_total = 0
        self._skipped_samples = 0
        self._frozen: set[str] = set()

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
        limit = int(self.cfg.get("run", {}).get("max_nonfinite_steps", 10))
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
                if key in own and own[key].shape != value.shape and not _is_entropy_table(key):
                    raise CheckpointError(
                        f"{src['ckpt']}: '{src.get('prefix', '')}{key}' has shape {tuple(value.shape)}, "
                        f"module '{attr}' expects {tuple(own[key].shape)} (another model or preset?)"
                    )
            _resize_entropy_tables(module, state)
            result = module.load_state_dict(state, strict=False)
            line = (
                f"init_from {attr} <- {src['ckpt']} [{src.get('prefix', '')}]: {len(state)} tensors, "
                f"missing {len(result.missing_keys)}, unexpected {len(result.unexpected_keys)}"
            )
            report.append(line)
            rank_zero_warn(line + _key_list("missing", result.missing_keys) + _key_list("unexpected", result.unexpected_keys))
        return report

    # ---- checkpoint extras ----------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["hdc"] = {
            "nonfinite_total": self._nonfinite_total,
            "skipped_samples": self._skipped_samples,
            "phase": self.pcfg.get("name"),
            "model": dict(self.cfg.get("model", {})),
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
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
        if isinstance(value, Mapping) and value and "ckpt" not in value and all(isinstance(v, Mapping) for v in value.values()):
            out.update(flatten_sources(value, path + "."))
        else:
            out[path] = value
    return out


# CompressAI entropy models keep CDF tables whose shapes depend on update(); an earlier
# stage's tables must be taken at their own shape, not rejected as a mismatch.
_ENTROPY_TABLES = ("_quantized_cdf", "_offset", "_cdf_length", "scale_table")


def _is_entropy_table(key: str) -> bool:
    return key.rsplit(".", 1)[-1] in _ENTROPY_TABLES


def _resize_entropy_tables(module: torch.nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    own = dict(module.named_buffers())
    for key, value in state.items():
        if _is_entropy_table(key) and key in own and own[key].shape != value.shape:
            path, _, name = key.rpartition(".")
            owner = module.get_submodule(path) if path else module
            owner.register_buffer(name, torch.empty_like(value, device=own[key].device))


def _key_list(label: str, keys: list[str], limit: int = 8) -> str:
    if not keys:
        return ""
    more = f" … (+{len(keys) - limit})" if len(keys) > limit else ""
    return f"\n  {label}: " + ", ".join(keys[:limit]) + more
