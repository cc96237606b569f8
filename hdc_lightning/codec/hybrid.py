"""The hybrid codec (container kind 2): LIC strings + mask schedule + masked VQ indices.

File = the ``.hdc`` container (:mod:`hdc_lightning.codec.container`) with::

    params (7 bytes)   version (1) | mask mode (1) | DRV seed (uint32 LE) | T steps (1)
    streams            LIC …            the LIC model's rANS strings (lic.stream_names())
                       schedule         MaskSchedule bytes (1 byte uniform, 2 + ⌈regions/4⌉ auto)
                       indices          rANS bytes of the VQ indices at the sent positions
                                        (4-byte CRC with the prior table's fingerprint + payload)

Nothing is stored for the DRVs: the decoder samples them from x̂ and the header seed.

Determinism. CPU float results change in the last bits with the number of intra-op
threads (measured: T's logits and the VQ decoder's output differ between 1 and 2
threads); in this codec such a bit can flip an argmax of T (a different index, visible
pixels) or an entropy parameter of the LIC coder (a wrong decode). Encoding and decoding
therefore run every network at a fixed intra-op thread count (``threads``, default 1,
restored afterwards), so a file
decodes to the same pixels whatever ``torch.set_num_threads`` the caller uses. Two
decoders agree bit for bit when they use the same ``threads`` value, the same CPU
instruction set and the same torch build; on a GPU (``device="cuda"``) decoding is
fast but only reproducible on that GPU type.
"""

from __future__ import annotations

import hashlib
import struct
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor

from hdc_lightning.codec.api import Decoded, ModelId, check_model_id, register_codec
from hdc_lightning.codec.container import Header, Limits, pack, unpack
from hdc_lightning.codec.lic import guard_streams
from hdc_lightning.codec.tiles import TiledCoding, check_image, check_tile, is_tiled
from hdc_lightning.errors import BitstreamError, ConfigError, HDCError, first_line
from hdc_lightning.models.hybrid import HDCDecoded, HDCModel
from hdc_lightning.models.masks import MaskSchedule, uniform_schedule

PARAMS_VERSION = 1
MASK_MODES = ("auto", "full", "1/4", "1/9", "none")  # the byte stores the position in this tuple
_PARAMS = struct.Struct("<BBIB")
OUTPUT_KINDS = ("perceptual", "fidelity")


@contextmanager
def fixed_threads(n: int | None):
    """Run the body with ``n`` intra-op threads (None: leave the caller's setting)."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def pack_params(mask_mode: str, seed: int, steps: int) -> bytes:
    return _PARAMS.pack(PARAMS_VERSION, MASK_MODES.index(mask_mode), seed, steps)


def unpack_params(data: bytes, source: str) -> tuple[str, int, int]:
    if len(data) != _PARAMS.size:
        raise BitstreamError(f"{source}: {len(data)} codec parameter bytes, the hdc codec writes {_PARAMS.size}")
    version, mode, seed, steps = _PARAMS.unpack(data)
    if version != PARAMS_VERSION:
        raise BitstreamError(f"{source}: hdc parameter version {version}, this reader supports {PARAMS_VERSION}")
    if mode >= len(MASK_MODES) or not 1 <= steps <= 64:
        raise BitstreamError(f"{source}: invalid hdc parameters (mask mode {mode}, T steps {steps})")
    return MASK_MODES[mode], seed, steps


@register_codec("hdc", kind=2)
class HybridCodec(TiledCoding):
    """Encodes with ``HDCModel.compress``; decodes to x̃ (perceptual) or x̂_lic (fidelity).

    Options: ``mask`` (auto | full | 1/4 | 1/9 | none; default: the model's mask policy),
    ``seed`` (DRV seed written to the header; default: the model's ``drv_seed``),
    ``steps`` (T refinement steps written to the header), ``device``, ``limits``,
    ``threads`` (see the module docstring; None disables the pinning), ``tile`` (how ``encode``
    tiles images, :func:`hdc_lightning.codec.tiles.plan`; every tile gets the same options).
    """

    name: str
    kind: int

    def __init__(
        self,
        model: HDCModel,
        model_id: ModelId,
        device: str = "cpu",
        limits: Limits = Limits(),
        mask: str | None = None,
        seed: int | None = None,
        steps: int | None = None,
        threads: int | None = 1,
        tile: int | None = None,
    ):
        check_tile(tile, limits)
        if mask is not None and mask not in MASK_MODES:
            raise ConfigError(f"mask mode '{mask}' is unknown; choose one of {', '.join(MASK_MODES)}")
        if seed is not None and not 0 <= int(seed) < 2**32:
            raise ConfigError(f"DRV seed must be in [0, 2**32), got {seed}")
        if steps is not None and not 1 <= int(steps) <= 64:
            raise ConfigError(f"T steps must be in 1..64, got {steps}")
        self.model = model.eval().to(device)
        self.device = torch.device(device)
        self.model_id, self.limits, self.threads, self.tile = model_id, limits, threads, tile
        self.mask = mask or model.masks.mode
        self.seed = model.drv_seed if seed is None else int(seed)
        self.steps = int(model.predictor.steps if steps is None else steps)
        self.lic_names = list(model.lic.stream_names())

    def stream_names(self) -> list[str]:
        return self.lic_names + ["schedule", "indices"]

    def encode_one(self, image: Tensor, *, mask: str | None = None) -> bytes:
        """One file of one piece; ``mask`` overrides the codec's mask mode for this image (rate control tries several)."""
        if mask is not None and mask not in MASK_MODES:
            raise ConfigError(f"mask mode '{mask}' is unknown; choose one of {', '.join(MASK_MODES)}")
        check_image(image, self.limits)
        h, w = (int(s) for s in image.shape[-2:])
        with fixed_threads(self.threads):
            c = self.model.compress(
                image[None].to(self.device, torch.float32), mask or self.mask, self.seed, self.steps
            )
        streams = [*c.lic_strings, c.schedule, c.indices]
        params = pack_params(c.mask_mode, c.seed, c.steps)
        return pack(self.kind, self.model_id.digest, h, w, streams, params=params, limits=self.limits)

    def decode_one(
        self,
        data: bytes,
        *,
        source: str = "<bytes>",
        output: str | None = None,
        realism: float | None = None,
        realism_mode: str | None = None,
        **options: Any,
    ) -> Decoded:
        """x̃ (``output="perceptual"``, the default, = ``realism=1``) or x̂_lic (``"fidelity"``);
        ``realism`` a in [0, 1] between them, per ``realism_mode``:

        * ``learned`` (the default for a realism-conditioned model): x̃ decoded at level a by the
          one perceptual decoder trained for every level (a = 0: its MSE-trained output);
        * ``blend``: the pixel mix (1 − a)·x̂_lic + a·x̃ (see :func:`mix_outputs`; a = 0 is x̂_lic).
        """
        if options:
            raise HDCError(f"the hdc codec takes no decode option {', '.join(sorted(options))}")
        mode = self.realism_mode(realism_mode)
        if mode == "learned" and realism is not None and output is None:
            a = check_realism(realism)
            header, decoded = self.decode_full(data, source=source, output="perceptual", realism=a)
            image = decoded.x_tilde
        else:
            a = _realism_of(output, realism)
            header, decoded = self.decode_full(data, source=source, output=_OUTPUT_OF.get(a, "both"))
            image = mix_outputs(decoded.x_hat_lic, decoded.x_tilde, a)
        return Decoded(image[0].float().cpu(), dict(zip(self.stream_names(), header.stream_lengths)), header.size)

    def realism_mode(self, mode: str | None = None) -> str:
        """``mode``, checked, or this model's default: learned when its decoder is realism-conditioned."""
        if mode is None:
            return "learned" if self.model.learned_realism else "blend"
        if mode not in REALISM_MODES:
            raise ConfigError(f"realism mode '{mode}' is unknown; choose one of {', '.join(REALISM_MODES)}")
        if mode == "learned" and not self.model.learned_realism:
            raise ConfigError(
                "realism mode 'learned': this model's perceptual decoder is not realism-conditioned; use 'blend'"
            )
        return mode

    def decode_full(
        self,
        data: bytes,
        source: str = "<bytes>",
        output: str = "both",
        timings: dict | None = None,
        realism: float | None = None,
    ) -> tuple[Header, HDCDecoded]:
        """Every intermediate (x̂, DRVs, d̂, mask, both outputs) of one decode of a file of one piece;
        ``realism``: the level of a realism-conditioned perceptual decoder (None: 1)."""
        if is_tiled(data):
            raise BitstreamError(f"{source}: a tiled file; its intermediates exist per tile, decode it with decode()")
        container = unpack(data, self.limits, source)
        header = container.header
        check_model_id(header, self, source)
        n_lic = len(self.lic_names)
        if len(container.streams) != n_lic + 2:
            raise BitstreamError(
                f"{source}: {len(container.streams)} streams, the hdc codec writes {n_lic + 2} ({n_lic} LIC + schedule + indices)"
            )
        mode, seed, steps = unpack_params(header.params, source)
        lic = container.streams[:n_lic]
        schedule, indices = container.streams[n_lic], container.streams[n_lic + 1]
        _check_schedule_mode(schedule, mode, source)
        lic = guard_streams(lic, self.model.lic.symbols_per_stream(header.height, header.width), source)
        try:
            with fixed_threads(self.threads):
                out = self.model.decompress(
                    lic, schedule, indices, (header.height, header.width), seed, steps, output, timings, realism
                )
        except BitstreamError as e:
            raise BitstreamError(f"{source}: {e}") from None
        except (RuntimeError, ValueError, AssertionError, IndexError) as e:
            first = first_line(e)
            raise BitstreamError(f"{source}: payload does not decode ({first})") from None
        return header, out


# ---- realism: the perception-distortion knob of the decoder --------------------------------
_OUTPUT_OF = {0.0: "fidelity", 1.0: "perceptual"}  # the end points decode only what they show
REALISM_MODES = ("learned", "blend")


def check_realism(value: float, flag: str = "realism") -> float:
    """A number in [0, 1]; ConfigError (one line) otherwise."""
    try:
        a = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{flag} {value!r}: not a number; give a value in [0, 1]") from None
    if not 0.0 <= a <= 1.0:  # also refuses nan
        raise ConfigError(f"{flag} {value!r}: must be in [0, 1] (0 fidelity, 1 perceptual)")
    return a


def _realism_of(output: str | None, realism: float | None) -> float:
    if output is not None and output not in OUTPUT_KINDS:
        raise ConfigError(f"output '{output}' is unknown; choose one of {', '.join(OUTPUT_KINDS)}")
    if realism is None:
        return 0.0 if output == "fidelity" else 1.0
    a = check_realism(realism)
    if output is not None and a != (1.0 if output == "perceptual" else 0.0):
        raise ConfigError(f"output '{output}' contradicts realism {a:g}; give one of the two")
    return a


def mix_outputs(x_hat_lic: Tensor, x_tilde: Tensor | None, a: float) -> Tensor:
    """(1 − a)·x̂_lic + a·x̃, with a = 0 and 1 returning the two outputs untouched.

    Why a pixel mix: fidelity and realism cannot both be optimal (the perception-distortion
    trade-off, Blau & Michaeli, CVPR 2018), and for squared error with a Wasserstein-2
    realism index the estimators on that trade-off are exactly mixes of the MMSE estimate
    and a perfect-realism estimate (Freirich et al., NeurIPS 2021). x̂_lic plays the
    MMSE-like part and x̃ the realistic one; they are not those optima, so the mix is the
    principled approximation, measured in docs/operating-point.md. Plain float arithmetic on
    the two outputs: deterministic wherever they are.
    """
    if a == 0.0:
        return x_hat_lic
    if a == 1.0:
        return x_tilde
    return ((1.0 - a) * x_hat_lic + a * x_tilde).clamp(0, 1)


class WithRealism:
    """A hybrid codec whose ``decode`` uses one realism value; encodes are cached per image,
    so a sweep over realism codes each image once (``hdc eval --realism``)."""

    def __init__(self, codec: HybridCodec, realism: float, cache: dict | None = None, mode: str | None = None):
        self.codec, self.realism = codec, check_realism(realism)
        self.mode = codec.realism_mode(mode)
        self.cache = {} if cache is None else cache

    def encode(self, image: Tensor) -> bytes:
        key = (tuple(image.shape), hashlib.sha1(image.float().contiguous().numpy().tobytes()).digest())
        if key not in self.cache:
            self.cache[key] = self.codec.encode(image)
        return self.cache[key]

    def decode(self, data: bytes, **options: Any) -> Decoded:
        return self.codec.decode(data, realism=self.realism, realism_mode=self.mode, **options)

    def record(self) -> dict:
        return {"realism": self.realism, "realism_mode": self.mode}


def _check_schedule_mode(schedule: bytes, mode: str, source: str) -> None:
    """The parameter byte and the schedule stream must tell the same story."""
    if not schedule:
        raise BitstreamError(f"{source}: empty mask schedule stream")
    if mode == "auto":
        ok = schedule[0] == MaskSchedule(1, (0,)).to_bytes()[0]  # the per-region tag
    else:
        ok = schedule == uniform_schedule(mode).to_bytes()
    if not ok:
        raise BitstreamError(f"{source}: mask mode '{mode}' does not match the schedule stream")
