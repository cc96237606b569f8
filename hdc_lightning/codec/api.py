"""The codec API: what ``hdc compress``/``decompress``, evaluation and benchmarks use.

A codec turns one image into the bytes of a ``.hdc`` file and back::

    codec = load_codec("runs/lic-tiny/checkpoints/last.ckpt")
    data = codec.encode(image)            # Tensor[3,H,W] in [0,1] -> bytes
    decoded = codec.decode(data)          # -> Decoded(image, stream_bytes, header_bytes)

Codecs register under the registry name of the model they wrap
(``@register_codec("lic", kind=1)``) with a container ``kind`` byte of their own;
``load_codec`` picks one from the model spec stored in a checkpoint. By convention
a phase keeps its codec model at ``self.model``, so its weights sit under ``model.``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from hdc_lightning.checkpoints import checkpoint_config, safe_load
from hdc_lightning.codec.container import MODEL_ID_BYTES, Header
from hdc_lightning.errors import BitstreamError, CheckpointError, HDCError, first_line
from hdc_lightning.models.lic.buffers import FIXED_POINT_TABLES, is_table

STATE_PREFIX = "model."


class Decoded(NamedTuple):
    image: Tensor  # [3,H,W] float32 in [0,1]
    stream_bytes: dict[str, int]  # payload bytes per named stream
    header_bytes: int  # container overhead (header + crc)


@dataclass(frozen=True)
class ModelId:
    """Which weights made a file: registry name, preset, and an 8-byte fingerprint."""

    name: str
    preset: str | None
    digest: bytes

    def __str__(self) -> str:
        return f"{self.name}/{self.preset or '-'}#{self.digest.hex()}"


@runtime_checkable
class ImageCodec(Protocol):
    name: str  # registry name of the model, e.g. "lic"
    kind: int  # container kind byte
    model_id: ModelId

    def encode(self, image: Tensor) -> bytes: ...

    def decode(self, data: bytes, **options: Any) -> Decoded: ...


_CODECS: dict[str, type] = {}
_KINDS: dict[int, str] = {}


def register_codec(name: str, kind: int) -> Callable[[type], type]:
    """Class decorator: the codec for models registered as ``name``, container kind ``kind``."""

    def deco(cls: type) -> type:
        if _KINDS.get(kind, name) != name or (name in _CODECS and _CODECS[name] is not cls):
            raise ValueError(f"codec '{name}' (kind {kind}) clashes with a registered codec")
        cls.name, cls.kind = name, kind
        _CODECS[name], _KINDS[kind] = cls, name
        return cls

    return deco


def codec_names() -> list[str]:
    return sorted(_CODECS)


def kind_name(kind: int) -> str:
    return _KINDS.get(kind, f"unknown kind {kind}")


def fingerprint(model: nn.Module, spec: dict) -> bytes:
    """8-byte digest of the model spec and every tensor of its state (CDF tables included)."""
    h = hashlib.blake2b(digest_size=MODEL_ID_BYTES)
    canon = {"name": spec.get("name"), "preset": spec.get("preset"), "args": spec.get("args") or {}}
    h.update(json.dumps(canon, sort_keys=True, default=str).encode())
    for key, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{key}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.digest()


def check_model_id(header: Header, codec: ImageCodec, source: str) -> None:
    """A file decodes only with the codec kind and the exact weights that encoded it."""
    if header.kind != codec.kind or header.model_id != codec.model_id.digest:
        raise BitstreamError(
            f"{source}: made by model {kind_name(header.kind)}#{header.model_id.hex()}, "
            f"but the checkpoint holds {codec.model_id}; decode it with the checkpoint that encoded it"
        )


# A model spec may ask for at most this many values per value the file stores (exports leave
# training-only parts out), so a forged spec in a small file cannot make us allocate gigabytes.
SPEC_SIZE_RATIO = 8


def _build_checked(spec: dict, state: dict, path: str) -> nn.Module:
    """Build the spec's model, first on the meta device (no memory) to check that it can be
    built at all and is not far larger than the weights the file holds."""
    from hdc_lightning import registry

    def build() -> nn.Module:
        try:
            return registry.build_spec("model", spec, where="checkpoint model")
        except HDCError as e:
            raise CheckpointError(f"{path}: cannot rebuild its model ({e})") from None
        except (TypeError, ValueError, RuntimeError, OverflowError, AssertionError) as e:  # e.g. a size of -3 or "x"
            raise CheckpointError(f"{path}: its model spec cannot be built ({first_line(e)})") from None

    with torch.device("meta"):
        wanted = sum(t.numel() for t in build().state_dict().values())
    stored = sum(t.numel() for t in state.values() if isinstance(t, torch.Tensor))
    if wanted > SPEC_SIZE_RATIO * stored + (1 << 20):
        raise CheckpointError(
            f"{path}: its model spec ({spec.get('name')}/{spec.get('preset')}) asks for {wanted:,} values but the "
            f"file holds {stored:,}: weights of another model or preset, or a damaged or forged file"
        )
    return build()


def _load_model(ckpt: dict, spec: dict, path: str) -> nn.Module:
    from hdc_lightning.models.lic.buffers import resize_entropy_buffers

    state = ckpt.get("state_dict")
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: has no state_dict")
    state = {k[len(STATE_PREFIX) :]: v for k, v in state.items() if k.startswith(STATE_PREFIX)}
    if not state:
        raise CheckpointError(f"{path}: no weights under '{STATE_PREFIX}'")
    model = _build_checked(spec, state, path)
    # Training-only parts an export leaves out are zeros (the model id does not depend on
    # their init); entropy tables a file lacks stay empty and are built by load_codec.
    skipped = getattr(model, "TRAINING_ONLY", ())
    for key, value in model.state_dict().items():
        if key not in state and (is_table(key) or key.startswith(skipped)):
            state[key] = value if is_table(key) else torch.zeros_like(value)
    resize_entropy_buffers(model, state)
    own = model.state_dict()
    missing, unexpected = key_parts(set(own) - set(state)), key_parts(set(state) - set(own))
    if missing or unexpected:  # say which parts, not torch's first line (it names no key)
        what = "; ".join(
            f"{label} {', '.join(parts)}"
            for label, parts in (("missing", missing), ("unexpected", unexpected))
            if parts
        )
        raise CheckpointError(
            f"{path}: weights do not fit model {spec.get('name')}/{spec.get('preset')} ({what}); "
            "a checkpoint of another version or model? retrain or re-export it"
        )
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, KeyError) as e:  # compressai looks its table keys up by name
        first = first_line(e)
        raise CheckpointError(
            f"{path}: weights do not fit model {spec.get('name')}/{spec.get('preset')} ({first})"
        ) from None
    return model


def key_parts(keys: set[str], limit: int = 4) -> list[str]:
    """The distinct two-level prefixes of state keys (``perceptual.g_s.*``), a few of them."""
    parts = sorted({".".join(k.split(".")[:2]) + ".*" for k in keys})
    return parts[:limit] + ([f"… {len(parts) - limit} more"] if len(parts) > limit else [])


# The integer CDF tables of the LIC's entropy models, their scale table included: stored
# with the weights and never recomputed at load, so every machine codes with the same ones.
def has_tables(model: nn.Module) -> bool:
    """True when every entropy model under ``model`` holds its CDF tables (and a model with
    fixed-point tables, MLIC++, holds those)."""
    from compressai.entropy_models import EntropyModel

    cdfs = all(m._offset.numel() > 0 for m in model.modules() if isinstance(m, EntropyModel))
    return cdfs and all(b.numel() > 0 for n, b in model.named_buffers() if n.endswith(FIXED_POINT_TABLES))


def table_bytes(model: nn.Module) -> int:
    """Bytes the stored entropy tables take (what shipping them costs in a model file)."""
    return sum(t.numel() * t.element_size() for k, t in model.state_dict().items() if is_table(k))


def export_checkpoint(model: nn.Module, spec: dict, path: str, half: bool = False) -> None:
    """Write a weights-only checkpoint ``load_codec`` accepts (no optimizer state).

    ``spec`` is the model's config spec ``{name, preset, args}``. ``half=True`` stores float
    weights as float16 (half the file; they load back into the float32 model). The
    entropy tables are rebuilt from the weights exactly as stored (after any float16
    rounding) and written with them, in their own integer/float32 types.
    """
    from hdc_lightning.checkpoints import atomic_torch_save

    model = copy.deepcopy(model).cpu()
    skipped = getattr(model, "TRAINING_ONLY", ())
    with torch.no_grad():
        if half:
            for k, v in model.state_dict().items():
                if v.is_floating_point() and not is_table(k):
                    v.copy_(v.half().float())
        model.update(force=True)

    def keep(k: str, v: torch.Tensor) -> torch.Tensor:
        v = v.detach().cpu()
        return v.half() if half and v.is_floating_point() and not is_table(k) else v

    state = {f"{STATE_PREFIX}{k}": keep(k, v) for k, v in model.state_dict().items() if not k.startswith(skipped)}
    spec = {"name": spec.get("name"), "preset": spec.get("preset"), "args": dict(spec.get("args") or {})}
    atomic_torch_save({"state_dict": state, "hyper_parameters": {"cfg": {"model": spec}}}, path, record=True)


def load_codec(ckpt_path: str, **options: Any) -> ImageCodec:
    """Rebuild the checkpoint's model, load its weights and stored entropy tables, wrap it.

    ``ckpt_path`` is a checkpoint file or the name of a shipped model (``"small"``, see
    :mod:`hdc_lightning.pretrained`). ``options`` go to the codec's constructor (e.g. ``device``).
    """
    from hdc_lightning import pretrained

    path = str(pretrained.weights_path(ckpt_path) if pretrained.is_pretrained(ckpt_path) else ckpt_path)
    ckpt = safe_load(path)
    spec = dict(checkpoint_config(ckpt, path).get("model") or {})
    name = spec.get("name")
    if name not in _CODECS:
        raise CheckpointError(
            f"{path}: holds model '{name}', which has no codec; codecs exist for: {', '.join(codec_names())}"
        )
    model = _load_model(ckpt, spec, path).eval()
    if not has_tables(model):
        # A checkpoint saved before any update() (or exported before format 2): tables built
        # here, in floats. The id covers them, so another CPU refuses such files, never misreads them.
        warnings.warn(
            f"{path}: stores no entropy tables; built them on this machine, so files it writes may be "
            "refused on another CPU (`hdc export` stores them)",
            stacklevel=2,
        )
        with torch.no_grad():
            model.update(force=True)
    model_id = ModelId(str(name), spec.get("preset"), fingerprint(model, spec))
    return _CODECS[name](model, model_id, **options)
