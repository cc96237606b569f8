"""compress()/decompress() of the hybrid model: the exact steps both ends of a file run.

Encoder (needs the original x)::

    x ─ lic.compress ───────────────────────────────► LIC strings
    x ─ pad16 ─ masks.choose(x, mode) ─ schedule ───► schedule bytes
           └── vq.encode_indices ─ [sent] ─ rANS ───► index bytes

The sent indices, the schedule and the LIC strings depend on x only, so the encoder never
needs the decoder's x̂ or DRVs. (The auto schedule is chosen from x, which the decoder
does not have; that is why it is sent.)

Decoder (bytes + weights + header seed only)::

    LIC strings ─ lic.decompress ─ x̂ ─ pad16 ─ sampler(x̂, seed) ─ v_L, v_P
    x̂, v_L ─ enhancer ─ x̂_lic                                     (fidelity output)
    schedule ─ mask; index bytes ─ sent indices
    T.decode(sent, x̂_lic, v_P, steps) ─ d̂ (sent positions unchanged)
    vq.embed(d̂) ─ correction(·, x̂_lic, v_P) ─ vq.decode ─ x̃        (perceptual output)

Every step is deterministic: the DRV start vector comes from a private generator seeded
with the header seed, T decodes by argmax on a fixed schedule, and nothing reads global
RNG state. Bit-exact pixels across thread counts additionally need a fixed intra-op
thread count (see :mod:`hdc_lightning.codec.hybrid`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import contextmanager
from typing import NamedTuple

import torch
from torch import Tensor

from hdc_lightning.models.drv import DRVs
from hdc_lightning.models.lic import pad_image
from hdc_lightning.models.masks import MaskSchedule

TOKEN = 16  # VQ downsampling: the token grid is H/16 × W/16
OUTPUTS = ("perceptual", "fidelity", "both")


def check_grid(x: Tensor) -> None:
    if x.dim() != 4 or x.shape[1] != 3 or x.shape[-2] % TOKEN or x.shape[-1] % TOKEN:
        raise ValueError(f"images must be [B, 3, H, W] with H, W multiples of {TOKEN}, got {tuple(x.shape)}")


def token_grid(h: int, w: int) -> tuple[int, int]:
    return -(-h // TOKEN), -(-w // TOKEN)


class HDCCompressed(NamedTuple):
    lic_strings: list[bytes]  # one per LIC stream (lic.stream_names())
    schedule: bytes  # MaskSchedule.to_bytes()
    indices: bytes  # rANS bytes of the sent indices (empty when nothing is sent)
    shape: tuple[int, int]  # image (H, W)
    mask_mode: str
    seed: int  # DRV seed the decoder must use
    steps: int  # T refinement steps the decoder must use


class HDCDecoded(NamedTuple):
    x_tilde: Tensor | None  # [1, 3, H, W] perceptual output in [0, 1] (None for output="fidelity")
    x_hat_lic: Tensor  # [1, 3, H, W] fidelity output in [0, 1]
    x_hat: Tensor  # [1, 3, H, W] base LIC reconstruction in [0, 1]
    y_hat: Tensor  # [1, M, h, w] the LIC's decoded latent (symbols + means, exact on every machine)
    drvs: DRVs  # the sampled DRVs
    d_hat: Tensor | None  # [1, h, w] completed index map
    sent: Tensor | None  # bool [h, w]
    schedule: MaskSchedule


@contextmanager
def _timed(timings: dict | None, key: str, sync: torch.device | None = None):
    if timings is None:
        yield
        return
    t0 = time.perf_counter()
    yield
    if sync is not None and sync.type == "cuda":
        torch.cuda.synchronize(sync)
    timings[key] = timings.get(key, 0.0) + time.perf_counter() - t0


class HybridCoding:
    """Mixin of :class:`HDCModel`: real bytes in, pixels out (one image at a time)."""

    def _device(self) -> torch.device:
        return next(self.enhancer.parameters()).device

    @torch.no_grad()
    def compress(
        self, x: Tensor, mask_mode: str | None = None, seed: int | None = None, steps: int | None = None
    ) -> HDCCompressed:
        """Encode one image ``x`` [1, 3, H, W] in [0, 1] (any H, W)."""
        if x.dim() != 4 or x.shape[0] != 1 or x.shape[1] != 3:
            raise ValueError(f"compress takes one image [1, 3, H, W], got {tuple(x.shape)}")
        h, w = (int(s) for s in x.shape[-2:])
        mode = mask_mode or self.masks.mode
        seed = self.drv_seed if seed is None else int(seed)
        steps = int(self.predictor.steps if steps is None else steps)
        lic = self.lic.compress(x)
        xp = pad_image(x.to(self._device()), TOKEN)
        schedule = self.masks.choose(xp, mode)
        gh, gw = token_grid(h, w)
        sent = schedule.mask(gh, gw)
        indices = self.vq.encode_indices(xp)[0].cpu()
        data = self.vq.index_coder().encode_indices(indices, sent)
        return HDCCompressed([s[0] for s in lic.strings], schedule.to_bytes(), data, (h, w), mode, seed, steps)

    @torch.no_grad()
    def decompress(
        self,
        lic_strings: Sequence[bytes],
        schedule: bytes,
        indices: bytes,
        shape: Sequence[int],
        seed: int | None = None,
        steps: int | None = None,
        output: str = "both",
        timings: dict | None = None,
        realism: float | None = None,
    ) -> HDCDecoded:
        """Decode what :meth:`compress` produced; ``output="fidelity"`` skips the VQ branch.
        ``realism``: the level a ∈ [0, 1] of a realism-conditioned perceptual decoder (None: 1).

        ``timings`` (optional dict) accumulates seconds per part: lic, drv, enhancer,
        index_decode, predictor, correction, vq_decode.
        Malformed schedule or index bytes raise :class:`~hdc_lightning.errors.BitstreamError`.
        """
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {', '.join(OUTPUTS)}, got {output!r}")
        h, w = int(shape[0]), int(shape[1])
        gh, gw = token_grid(h, w)
        dev = self._device()
        seed = self.drv_seed if seed is None else int(seed)
        with _timed(timings, "lic", dev):
            lic = self.lic.decompress([[bytes(s)] for s in lic_strings], (h, w))
            x_hat = lic.x_hat.to(dev).clamp(0, 1)
        xp_hat = pad_image(x_hat, TOKEN)
        with _timed(timings, "drv", dev):
            drvs = self.sample_drvs(xp_hat, seed)
        with _timed(timings, "enhancer", dev):
            x_hat_lic = self.enhance(xp_hat, drvs)
        with _timed(timings, "index_decode"):
            sched = MaskSchedule.from_bytes(schedule, (gh, gw))
            sent = sched.mask(gh, gw)
            received = None if output == "fidelity" else self.vq.index_coder().decode_indices(indices, (gh, gw), sent)
        fidelity = x_hat_lic[..., :h, :w].clamp(0, 1)
        if output == "fidelity":
            return HDCDecoded(None, fidelity, x_hat, lic.y_hat, drvs, None, sent, sched)
        with _timed(timings, "predictor", dev):
            d_hat = self.predictor.decode(received[None].to(dev), sent[None].to(dev), x_hat_lic, drvs.v_P, steps)
        x_tilde = self._decode_latent(d_hat, x_hat_lic, drvs, timings, dev, realism, lic.y_hat.to(dev))
        return HDCDecoded(x_tilde[..., :h, :w].clamp(0, 1), fidelity, x_hat, lic.y_hat, drvs, d_hat, sent, sched)

    def _decode_latent(
        self, d_hat: Tensor, x_hat_lic: Tensor, drvs: DRVs, timings: dict | None, dev, realism=None, y_hat=None
    ) -> Tensor:
        with _timed(timings, "correction", dev):
            z = self.vq.embed(d_hat)
            if self.correction is not None:
                z = self.correction(z, x_hat_lic, drvs.v_P if self.use_correction_drv else None).z
        with _timed(timings, "vq_decode", dev):
            return self.vq.decode(z) if self.perceptual is None else self.perceptual(z, x_hat_lic, realism, y_hat)
