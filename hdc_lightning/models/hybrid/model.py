"""The HDCompression model "hdc": both streams, the DRVs and the fusion modules in one module."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from hdc_lightning.errors import ConfigError
from hdc_lightning.models.drv import DRVs
from hdc_lightning.models.fusion.perceptual import PERCEPTUAL_MODES
from hdc_lightning.models.hybrid.coding import TOKEN, HybridCoding, check_grid
from hdc_lightning.registry import build_spec, register

# Attribute name → registry name of each part.
PARTS = {
    "lic": "lic",
    "vq": "vq",
    "extractor": "drv_extractor",
    "sampler": "drv_sampler",
    "enhancer": "enhancer",
    "predictor": "predictor",
    "correction": "correction",
    "perceptual": "perceptual_decoder",
    "masks": "masks",
}
# Which DRVs exist under each ablation switch (v_L steers the enhancer, v_P the predictor T).
DRV_MODES = {"both": ("L", "P"), "none": (), "predictor": ("P",), "enhancer": ("L",)}


class HDCOutput(NamedTuple):
    """What the training forward computes (phases pick their losses from it).

    With ``fuse=False`` only x_hat, drvs, sent and drv_target are set (the rest is None).
    """

    x_hat: Tensor  # base LIC reconstruction, clamped to [0, 1] (frozen LIC, no gradient)
    drvs: DRVs  # the DRVs the fusion modules were steered by (fields None when switched off)
    x_hat_lic: Tensor  # enhanced reconstruction (fidelity output), not clamped
    indices: Tensor  # ground-truth VQ indices of x [B, h, w]
    sent: Tensor  # bool [B, h, w]: the positions that would be transmitted
    logits: Tensor  # T's logits [B, K, h, w]
    d_hat: Tensor  # completed index map fed to the VQ decoder (sent kept, argmax elsewhere)
    x_tilde: Tensor  # perceptual output (VQ decoder of the corrected latent), not clamped
    drv_target: DRVs | None = None  # drv_source="unrolled": the ground truth the denoisers match
    realism: Tensor | None = None  # [B] realism level x̃ was decoded at (a realism-conditioned decoder)


def part_spec(part: str, base: str | None, override: Any) -> dict:
    """``{name, preset, args}`` of one part: the ``base`` preset, updated by ``override``.

    ``override`` is None, a preset name, or a mapping with any of name/preset/args.
    """
    spec = {"name": PARTS[part], "preset": base, "args": {}}
    if override is None:
        return spec
    if isinstance(override, str):
        spec["preset"] = override
        return spec
    if not isinstance(override, Mapping):
        raise ConfigError(f"model.args.parts.{part}: expected a preset name or {{preset, args}}, got {override!r}")
    unknown = set(override) - {"name", "preset", "args"}
    if unknown:
        raise ConfigError(
            f"model.args.parts.{part}: unknown keys {', '.join(sorted(unknown))} (use name, preset, args)"
        )
    spec.update({k: v for k, v in override.items() if k != "args"})
    spec["args"] = dict(override.get("args") or {})
    return spec


@register("model", "hdc", presets={"tiny": dict(base="tiny"), "small": dict(base="small"), "paper": dict(base="paper")})
class HDCModel(HybridCoding, nn.Module):
    """HDCompression: a low-rate LIC stream plus a masked VQ-index stream, fused by DRVs.

    Lu, Li, Wang, Wang, Jiang, "HDCompression: Hybrid-Diffusion Image Compression for
    Ultra-Low Bitrates", arXiv 2502.07160 (2025); HybridFlow (ACM MM 2024) for the masked
    index stream; DiffIR (ICCV 2023) for the DRV diffusion. Decoder dataflow (training
    uses the same path with ground-truth or unrolled DRVs)::

        LIC bytes ── lic.decompress ── x̂ ──┬── enhancer(x̂, v_L) ── x̂_lic ─────────────► fidelity
                                           │                         │
        header seed ── sampler(x̂, seed) ──┴─ v_L, v_P  (0 bits)       │
        schedule ── mask ──┐                                          ▼
        index bytes ───────┴─ sent indices ── T(sent, x̂_lic, v_P) ── d̂ (sent kept)
        vq.embed(d̂) ── correction(·, x̂_lic, v_P) ── z' ── perceptual(z', x̂_lic) ── x̃ ──► perceptual
                                                         (x̂_lic injected at 1/8 … 1/1)

    Parts are built from nested specs: ``base`` is the preset of every part, ``parts``
    overrides one part (``{vq: {args: {codebook_size: 512}}}``). The predictor's
    codebook size and the correction's code dim are taken from the VQ part, the DRV
    width of every module from the extractor.

    Ablation switches (the paper's ablation table):
        drv: "both" | "none" (no DRV at all: no extractor, no sampler, no FiLM) |
             "predictor" (v_P only: T and correction) | "enhancer" (v_L only: LIC enhancement).
        correction: False skips the VQ correction module (x̃ = vq.decode(embed(d̂))).
        correction_drv: False builds the correction without FiLM even when v_P exists.
        perceptual: "inject" (default: x̃ from a VQ-decoder copy that sees x̂_lic at several
            scales, :class:`~hdc_lightning.models.fusion.PerceptualDecoder`) | "latent" (the
            paper's latent-only path, x̃ = vq.decode(z'); the ablation).
        perceptual_latent: True also feeds the LIC latent ŷ to the perceptual decoder (a second
            zero-initialised SFT per scale; ``inject`` only).
        drv_seed: the default DRV seed the codec writes into its header.
    """

    # State prefixes of parts that only training runs (DRVs are extracted from the ground
    # truth): codec exports leave them out and loading fills them with zeros.
    TRAINING_ONLY = ("extractor.",)

    def __init__(
        self,
        base: str | None = "tiny",
        parts: Mapping[str, Any] | None = None,
        drv: str = "both",
        correction: bool = True,
        correction_drv: bool = True,
        drv_seed: int = 0,
        perceptual: str = "inject",
        perceptual_latent: bool = False,
    ):
        super().__init__()
        parts = dict(parts or {})
        unknown = set(parts) - set(PARTS)
        if unknown:
            raise ConfigError(
                f"model.args.parts: unknown parts {', '.join(sorted(unknown))}; known: {', '.join(PARTS)}"
            )
        if drv not in DRV_MODES:
            raise ConfigError(f"model.args.drv: '{drv}' is not one of {', '.join(DRV_MODES)}")
        if perceptual not in PERCEPTUAL_MODES:
            raise ConfigError(f"model.args.perceptual: '{perceptual}' is not one of {', '.join(PERCEPTUAL_MODES)}")
        if not 0 <= int(drv_seed) < 2**32:
            raise ConfigError(f"model.args.drv_seed must be in [0, 2**32), got {drv_seed}")
        self.drv_mode, self.drv_names, self.drv_seed = drv, DRV_MODES[drv], int(drv_seed)
        spec = {p: part_spec(p, base, parts.get(p)) for p in PARTS}

        def make(part: str, **forced: Any) -> nn.Module:
            s = dict(spec[part])
            s["args"] = {**s["args"], **forced}
            return build_spec("model", s, where=f"model.args.parts.{part}")

        self.lic = make("lic")
        self.vq = make("vq")
        if self.vq.downsample != TOKEN:
            # The masks, T's conditioning and the correction work on the f16 grid of the LIC's
            # latent; an f8 VQ (docs/vq.md) is a VQ-stage option until they follow the VQ grid.
            raise ConfigError(
                f"model.args.parts.vq: the hybrid needs an f{TOKEN} VQ (5 ch_mult levels), got f{self.vq.downsample}"
            )
        dim = 0
        if self.drv_names:
            self.extractor = make("extractor", names=self.drv_names)
            dim = self.extractor.dim
            self.sampler = make("sampler", names=self.drv_names, dim=dim)
        else:
            self.extractor = self.sampler = None
        use_l, use_p = "L" in self.drv_names, "P" in self.drv_names
        self.enhancer = make("enhancer", drv_dim=dim if use_l else 0)
        self.predictor = make("predictor", codebook_size=self.vq.codebook_size, drv_dim=dim if use_p else 0)
        self.use_correction_drv = bool(correction and correction_drv and use_p)
        self.correction = (
            make("correction", code_dim=self.vq.code_dim, drv_dim=dim if self.use_correction_drv else 0)
            if correction
            else None
        )
        self.perceptual_mode = perceptual
        if perceptual_latent and perceptual != "inject":
            raise ConfigError(
                "model.args.perceptual_latent: the LIC latent feeds the perceptual decoder; needs perceptual=inject"
            )
        self.perceptual = (
            make("perceptual", decoder_args=self.vq.decoder_args, latent_ch=self.lic.M if perceptual_latent else 0)
            if perceptual == "inject"
            else None
        )
        self.masks = make("masks")

    # ---- building blocks shared by training and decoding ---------------------------------
    def base_reconstruction(self, x: Tensor) -> Tensor:
        """Training-path x̂ of the frozen LIC (eval-mode rounding), clamped like the decoder's."""
        return self.base_latent(x)[0]

    def base_latent(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(x̂, ŷ) of the frozen LIC: :meth:`base_reconstruction` and the latent it decodes."""
        with torch.no_grad():
            out = self.lic(x)
        return out.x_hat.clamp(0, 1), out.y_hat

    def extract(self, x_hat: Tensor, x: Tensor) -> DRVs:
        """Ground-truth DRVs (training only); empty when DRVs are switched off."""
        return self.extractor(x_hat, x) if self.extractor is not None else DRVs()

    def sample_drvs(self, x_hat: Tensor, seed: int | None = None) -> DRVs:
        """Decode-time DRVs from x̂ and a seed: no bits, no global RNG."""
        if self.sampler is None:
            return DRVs()
        return self.sampler.sample(x_hat, self.drv_seed if seed is None else int(seed))

    def unroll_drvs(self, x_hat: Tensor, target: DRVs, generator: torch.Generator | None = None) -> DRVs:
        """Training of the denoisers: the full reverse chain from noised ground-truth DRVs."""
        if self.sampler is None:
            return DRVs()
        return self.sampler.unroll(x_hat, target, generator)

    def enhance(self, x_hat: Tensor, drvs: DRVs) -> Tensor:
        return self.enhancer(x_hat, drvs.v_L).x_hat_lic

    @property
    def learned_realism(self) -> bool:
        """Whether x̃ depends on a realism level (a realism-conditioned perceptual decoder)."""
        return self.perceptual is not None and self.perceptual.conditioned

    def correct_and_decode(
        self, d_hat: Tensor, x_hat_lic: Tensor, drvs: DRVs, realism=None, y_hat: Tensor | None = None
    ) -> Tensor:
        """x̃ from z' = z_q + Δ(z_q, x̂_lic, v_P) (z_q without correction), by the perceptual
        decoder with x̂_lic (and ŷ, ``perceptual_latent``) injected, or by the VQ decoder
        (``perceptual="latent"``)."""
        return self._decode_latent(d_hat, x_hat_lic, drvs, None, None, realism, y_hat)

    def training_masks(self, b: int, h: int, w: int, device=None, reveal_max: float = 0.0) -> Tensor:
        return self.masks.training_masks(b, h, w, device=device, reveal_max=reveal_max)

    # ---- training forward ----------------------------------------------------------------
    def fuse(
        self,
        x: Tensor,
        x_hat: Tensor,
        drvs: DRVs,
        sent: Tensor,
        indices: Tensor | None = None,
        detach_lic: bool = True,
        realism: Tensor | None = None,
        y_hat: Tensor | None = None,
    ) -> HDCOutput:
        """Everything after the DRVs: enhancer, T (with ``sent``), correction, VQ decoder.

        ``detach_lic``: T and the correction read x̂_lic without sending gradients back into
        the enhancer, so x̂_lic is trained for fidelity only (they have their own encoders).
        """
        check_grid(x)
        x_hat_lic = self.enhance(x_hat, drvs)
        if indices is None:
            with torch.no_grad():
                indices = self.vq.encode_indices(x)
        cond = x_hat_lic.detach() if detach_lic else x_hat_lic
        logits = self.predictor(indices, sent, cond, drvs.v_P).logits
        d_hat = torch.where(sent.expand_as(indices), indices, logits.detach().argmax(1))
        x_tilde = self.correct_and_decode(d_hat, cond, drvs, realism, y_hat)
        out = HDCOutput(x_hat, drvs, x_hat_lic, indices, sent.expand_as(indices), logits, d_hat, x_tilde)
        return out._replace(realism=realism if self.learned_realism else None)

    def forward(
        self,
        x: Tensor,
        sent: Tensor | None = None,
        drv_source: str = "extracted",
        seed: int | None = None,
        *,
        reveal_max: float = 0.0,
        detach_lic: bool = True,
        fuse: bool = True,
        realism: Tensor | None = None,
    ) -> HDCOutput:
        """One training pass on crops ``x`` [B, 3, H, W] (H, W multiples of 16).

        ``drv_source``: "extracted" (ground truth from (x̂, x): phase 3, step 1),
        "unrolled" (denoisers from noised ground truth, which is returned as
        ``drv_target``: phase 3, step 2) or "sampled" (the decoder's DRVs from ``seed``:
        phase 4). ``sent`` defaults to a training mask (``reveal_max``, see
        :meth:`MaskPolicy.training_masks`). ``fuse=False`` stops after the DRVs. ``realism``
        [B]: the level each x̃ is decoded at (realism-conditioned decoder only; None: 1).
        """
        check_grid(x)
        b, _, h, w = x.shape
        if sent is None:
            sent = self.training_masks(b, h // TOKEN, w // TOKEN, device=x.device, reveal_max=reveal_max)
        x_hat, y_hat = self.base_latent(x)
        target = None
        if drv_source == "extracted":
            drvs = self.extract(x_hat, x)
        elif drv_source == "unrolled":
            with torch.no_grad():  # the extractor is the denoisers' teacher, not trained through them
                target = self.extract(x_hat, x)
            drvs = self.unroll_drvs(x_hat, target)
        elif drv_source == "sampled":
            drvs = self.sample_drvs(x_hat, seed)
        else:
            raise ValueError(f"drv_source must be extracted, unrolled or sampled, got {drv_source!r}")
        if not fuse:
            return HDCOutput(x_hat, drvs, None, None, sent, None, None, None, target)
        out = self.fuse(x, x_hat, drvs, sent, detach_lic=detach_lic, realism=realism, y_hat=y_hat)
        return out._replace(drv_target=target)

    # ---- coding ----------------------------------------------------------------------------
    def update(self, force: bool = False, **_: Any) -> bool:
        """Entropy tables of both streams (LIC CDFs, VQ index prior) from the current weights."""
        updated = self.lic.update(force=force)
        self.vq.update()
        return bool(updated)
