"""Bitstream fuzzing: mutated, truncated, extended, spliced and forged ``.hdc`` files.

Every case must end in a clean decode or the project's own :class:`BitstreamError` with a
one-line message; never another exception, never longer than ``HDC_FUZZ_CASE_SECONDS``,
never a peak memory beyond a bound derived from the reader's declared limits. The same
holds for the mask-schedule parser and the VQ index decoder.

    HDC_FUZZ_CASES=5000 .venv/bin/python -m pytest tests/reliability/test_fuzz.py   # make fuzz
    HDC_FUZZ_SEED=7 ...        another random sequence;  HDC_FUZZ_REPORT=out.json  saves the counts

A new codec joins the fuzz with one line in ``TARGETS``: a name and a function that, given
a work folder, returns valid files and the function decoding them (``codec_target`` makes
one from a registry model spec).
"""

from __future__ import annotations

import math
import os
import random
import time
import tracemalloc
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch

from hdc_lightning.codec import load_codec, unpack
from hdc_lightning.codec.container import CRC_BYTES, FORMAT_VERSION, MAGIC, MAX_PIXELS, MAX_SIDE, MAX_STREAMS, Limits
from hdc_lightning.errors import BitstreamError
from tests.helpers.images import synthetic_image
from tests.helpers.models import TINY_LIC_SPEC, random_init_checkpoint
from tests.helpers.reliability import (
    Tally,
    check_one_line,
    env_int,
    error_category,
    peak_rss,
    peak_rss_supported,
    time_bound,
)

CASES = env_int("HDC_FUZZ_CASES", 300)
SEED = env_int("HDC_FUZZ_SEED", 0)
CASE_SECONDS = float(os.environ.get("HDC_FUZZ_CASE_SECONDS", "20"))
SOURCE = "fuzz.hdc"
# Readers may lower the format's limits to harden a service; the fuzz does, so that a
# forged header that stays inside them (the worst a file can ask for) decodes in
# milliseconds. The memory bound below is derived from these limits.
FUZZ_LIMITS = Limits(max_side=256, max_pixels=128 * 128)
SIZES = [(17, 33), (64, 64), (48, 80), (128, 128), (64, 256)]  # incl. both limits reached


@dataclass
class FuzzTarget:
    name: str
    # work folder -> (valid files, decode(bytes) -> Decoded); decode raises BitstreamError
    make: Callable[[Path], tuple[list[bytes], Callable[[bytes], object]]]
    pad_multiple: int = 64  # the decoder works on images padded to this multiple
    limits: Limits = FUZZ_LIMITS


def codec_target(spec: dict, options: list[dict]):
    """Files of a randomly initialised codec model: ``SIZES`` images, encoded in turn by one
    codec per ``options`` entry (e.g. mask modes); every file decodes with the first."""

    def make(workdir: Path):
        ckpt = random_init_checkpoint(workdir / f"{spec['name']}.ckpt", spec, seed=0)
        codecs = [load_codec(str(ckpt), limits=FUZZ_LIMITS, **o) for o in options]
        files = [codecs[i % len(codecs)].encode(synthetic_image(h, w, seed=i)) for i, (h, w) in enumerate(SIZES)]
        return files, lambda data: codecs[0].decode(data, source=SOURCE)

    return make


TARGETS = [
    FuzzTarget("lic", codec_target(TINY_LIC_SPEC, [{}])),
    FuzzTarget("lic-tiled", codec_target(TINY_LIC_SPEC, [{"tile": 64}])),  # tiled files of 2-4 tiles, and whole
    FuzzTarget("vq", codec_target({"name": "vq", "preset": "tiny", "args": {}}, [{}]), pad_multiple=16),
    FuzzTarget(
        "hybrid",
        codec_target(
            {"name": "hdc", "preset": "tiny", "args": {}}, [{}, {"mask": "1/4"}, {"mask": "none"}, {"mask": "full"}]
        ),
    ),
]


# ---- the mutator -----------------------------------------------------------------------------
def varint(value: int, overlong: int = 0) -> bytes:
    """LEB128, optionally padded with ``overlong`` redundant continuation bytes."""
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        if value or overlong:
            out.append(byte | 0x80)
            if not value:
                overlong -= 1
                if overlong == 0:
                    out.append(0)
                    return bytes(out)
        else:
            out.append(byte)
            return bytes(out)


def seal(body: bytes) -> bytes:
    return body + zlib.crc32(body).to_bytes(4, "little")


@dataclass
class Fields:
    """The parsed fields of a valid file, to rebuild it with any value changed."""

    kind: int
    model_id: bytes
    height: int
    width: int
    params: bytes
    streams: list[bytes]
    version: int = FORMAT_VERSION
    count: int | None = None  # stream count byte (default: len(streams))
    lengths: list[int] | None = None  # declared lengths (default: the real ones)
    params_len: int | None = None
    overlong: dict = field(default_factory=dict)  # field -> extra varint bytes

    def build(self, reseal: bool = True) -> bytes:
        count = len(self.streams) if self.count is None else self.count
        lengths = [len(s) for s in self.streams[:-1]] if self.lengths is None else self.lengths
        o = self.overlong
        body = bytearray(MAGIC) + bytes((self.version & 0xFF, self.kind & 0xFF)) + self.model_id
        body += varint(self.height, o.get("height", 0)) + varint(self.width, o.get("width", 0))
        body += varint(len(self.params) if self.params_len is None else self.params_len, o.get("params", 0))
        body += self.params + bytes((count & 0xFF,)) + b"".join(varint(n, o.get("lengths", 0)) for n in lengths)
        body += b"".join(self.streams)
        return seal(bytes(body)) if reseal else bytes(body) + b"\0\0\0\0"


def fields_of(data: bytes) -> Fields:
    c = unpack(data, Limits())
    h = c.header
    return Fields(h.kind, h.model_id, h.height, h.width, h.params, list(c.streams))


INTERESTING = (0, 1, 0x7F, 0x80, 0xFF, 0xFE, 0x40)
BIG = (0, 1, 2, 63, 65, 255, 256, 257, 1 << 14, MAX_SIDE, MAX_SIDE + 1, 1 << 21, 1 << 28, (1 << 35) - 1)


class Mutator:
    """Random structural and byte-level damage to valid files; ``reseal`` recomputes the
    CRC like a forger would, so the damage reaches the header checks and the decoder."""

    OPS = ("bitflip", "bytes", "truncate", "extend", "insert_delete", "header", "stream", "splice")
    WEIGHTS = (3, 2, 2, 1, 1, 4, 4, 2)

    def __init__(self, files: list[bytes]):
        self.files = files
        self.fields = [fields_of(f) for f in files]

    def __call__(self, rng: random.Random) -> tuple[str, bytes]:
        op = rng.choices(self.OPS, self.WEIGHTS)[0]
        k = rng.randrange(len(self.files))
        desc, data = getattr(self, "_" + op)(rng, k)
        return f"{op}:{desc}", data

    def _maybe_reseal(self, rng, data: bytes) -> tuple[str, bytes]:
        if rng.random() < 0.6 and len(data) > CRC_BYTES:
            return "resealed", seal(data[:-CRC_BYTES])
        return "raw", data

    def _bitflip(self, rng, k):
        data = bytearray(self.files[k])
        for _ in range(rng.choice((1, 1, 2, 8))):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        return self._maybe_reseal(rng, bytes(data))

    def _bytes(self, rng, k):
        data = bytearray(self.files[k])
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.choice(INTERESTING + (rng.randrange(256),))
        return self._maybe_reseal(rng, bytes(data))

    def _truncate(self, rng, k):
        data = self.files[k]
        n = rng.randrange(len(data))
        if rng.random() < 0.5:  # a forger's truncation: cut the body, then a fresh CRC
            return f"body[:{n}]+crc", seal(data[: min(n, len(data) - CRC_BYTES)])
        return f"[:{n}]", data[:n]

    def _extend(self, rng, k):
        data = self.files[k]
        tail = rng.choice((bytes(rng.randint(1, 64)), rng.randbytes(rng.randint(1, 300)), data))
        if rng.random() < 0.5:  # appended to the payload, CRC recomputed
            return f"payload+{len(tail)}", seal(data[:-CRC_BYTES] + tail)
        return f"+{len(tail)}", data + tail

    def _insert_delete(self, rng, k):
        data = self.files[k]
        p = rng.randrange(len(data))
        if rng.random() < 0.5:
            out = data[:p] + rng.randbytes(rng.randint(1, 16)) + data[p:]
        else:
            out = data[:p] + data[p + rng.randint(1, 16) :]
        return self._maybe_reseal(rng, out)

    def _header(self, rng, k):
        f = Fields(**vars(self.fields[k]))
        f.streams, f.overlong = list(f.streams), {}
        what = rng.choice(
            (
                "height",
                "width",
                "size",
                "kind",
                "version",
                "model_id",
                "params",
                "params_len",
                "count",
                "lengths",
                "overlong",
            )
        )
        if what in ("height", "width"):
            setattr(f, what, rng.choice(BIG + (rng.randint(1, 300),)))
        elif what == "size":  # both sides at once, e.g. a 16384x16384 claim
            f.height = f.width = rng.choice((MAX_SIDE, 4096, 256, 129, 1))
        elif what == "kind":
            f.kind = rng.randrange(256)
        elif what == "version":
            f.version = rng.choice((0, 1, FORMAT_VERSION + 1, 255))
        elif what == "model_id":
            f.model_id = bytes(b ^ (1 << rng.randrange(8)) if i == 0 else b for i, b in enumerate(f.model_id))
        elif what == "params":
            f.params = rng.randbytes(rng.choice((1, 8, 1024, 1025)))
        elif what == "params_len":
            f.params_len = rng.choice(BIG[1:])
        elif what == "count":
            f.count = rng.choice((0, 1, len(f.streams) - 1, len(f.streams) + 1, MAX_STREAMS, MAX_STREAMS + 1, 255))
        elif what == "lengths":
            lengths = [len(s) for s in f.streams[:-1]]
            if not lengths:  # a one-stream file: declare a second stream to get a length field
                f.count, lengths = 2, [len(f.streams[0])]
            i = rng.randrange(len(lengths))
            lengths[i] = rng.choice((0, lengths[i] + 1, max(0, lengths[i] - 1), 1 << 20, (1 << 35) - 1))
            f.lengths = lengths
        else:
            f.overlong = {rng.choice(("height", "width", "params", "lengths")): rng.randint(1, 5)}
        return f"{what}", f.build(reseal=rng.random() < 0.9)

    def _stream(self, rng, k):
        f = Fields(**vars(self.fields[k]))
        s = list(f.streams)
        i = rng.randrange(len(s))
        what = rng.choice(("random", "random_len", "empty", "zeros", "ones", "flip", "swap", "dup", "drop", "all"))
        if what == "random":
            s[i] = rng.randbytes(len(s[i]))
        elif what == "random_len":
            s[i] = rng.randbytes(rng.choice((1, 3, 4, 7, 64, 1000)))
        elif what == "empty":
            s[i] = b""
        elif what == "zeros":
            s[i] = bytes(len(s[i]) or 8)
        elif what == "ones":
            s[i] = b"\xff" * (len(s[i]) or 8)
        elif what == "flip" and s[i]:
            b = bytearray(s[i])
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
            s[i] = bytes(b)
        elif what == "swap":
            j = rng.randrange(len(s))
            s[i], s[j] = s[j], s[i]
        elif what == "dup":
            s.insert(i, s[i])
        elif what == "drop" and len(s) > 1:
            del s[i]
        elif what == "all":
            s = [rng.randbytes(len(x)) for x in s]
        f.streams = s
        return f"{what}[{i}]", f.build()

    def _splice(self, rng, k):
        j = rng.randrange(len(self.files))
        a, b = self.files[k], self.files[j]
        if rng.random() < 0.5:  # header of one file, streams of another
            f = Fields(**vars(self.fields[k]))
            f.streams = list(self.fields[j].streams)
            return f"header{k}+streams{j}", f.build()
        cut_a, cut_b = rng.randrange(len(a)), rng.randrange(len(b))
        how, out = self._maybe_reseal(rng, a[:cut_a] + b[cut_b:])
        return f"{how} a{k}[:{cut_a}]+b{j}[{cut_b}:]", out


# ---- bounds ------------------------------------------------------------------------------------
def max_padded_pixels(limits: Limits, multiple: int) -> int:
    """The largest padded area any header inside ``limits`` can make a decoder work on."""
    pad = lambda n: -(-n // multiple) * multiple  # noqa: E731
    best = 0
    for h in range(1, limits.max_side + 1):
        w = min(limits.max_side, limits.max_pixels // h)
        if w >= 1:
            best = max(best, pad(h) * pad(w))
    return best


def _decode_case(decode, data: bytes, limits: Limits, tally: Tally, desc: str) -> None:
    try:
        out = decode(data)
    except BitstreamError as e:
        msg = str(e)
        try:
            check_one_line(msg, SOURCE)
        except AssertionError as bad:
            tally.failures.append(f"{desc}: {bad}")
            return
        tally.errors[error_category(msg, SOURCE)] += 1
        return
    except Exception as e:  # noqa: BLE001 - anything else is the failure we look for
        tally.failures.append(f"{desc}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
        return
    header = unpack(data, limits).header
    img = out.image
    if (
        tuple(img.shape) != (3, header.height, header.width)
        or not torch.isfinite(img).all()
        or img.min() < 0
        or img.max() > 1
    ):
        tally.failures.append(
            f"{desc}: clean decode gave {tuple(img.shape)} for a {header.height}x{header.width} header"
        )
        return
    tally.clean += 1


# ---- the tests ---------------------------------------------------------------------------------
@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # Tiny decodes gain nothing from intra-op threads, and on a loaded 2-core box two
    # spinning OpenMP threads make every case many times slower.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module", params=TARGETS, ids=lambda t: t.name)
def target(request, tmp_path_factory):
    t: FuzzTarget = request.param
    files, decode = t.make(tmp_path_factory.mktemp(f"fuzz-{t.name}"))
    return t, files, decode


def test_fuzz_codec(target):
    t, files, decode = target
    tally = Tally(t.name)
    measure = peak_rss_supported()
    peaks: list[int] = []
    # Calibrate: the memory a valid decode takes per padded pixel, then the bound for the
    # largest image any header inside the limits can declare.
    per_px = 0.0
    for data in files:
        decode(data)  # warm-up (lazy init)
        h = unpack(data, t.limits).header
        if measure:
            with peak_rss(peaks):
                decode(data)
            pad = lambda n: -(-n // t.pad_multiple) * t.pad_multiple  # noqa: E731
            per_px = max(per_px, peaks[-1] / (pad(h.height) * pad(h.width)))
    bound = 2 * per_px * max_padded_pixels(t.limits, t.pad_multiple) + 16 * 2**20
    mutate = Mutator(files)
    over: list[str] = []
    for i in range(CASES):
        rng = random.Random(f"{SEED}:{t.name}:{i}")
        desc, data = mutate(rng)
        desc = f"HDC_FUZZ_SEED={SEED} case {i} [{desc}]"
        tally.mutations[desc.split("[", 1)[1].split(":", 1)[0]] += 1
        peaks.clear()
        t0 = time.perf_counter()
        with time_bound(CASE_SECONDS, desc):
            if measure:
                with peak_rss(peaks):
                    _decode_case(decode, data, t.limits, tally, desc)
            else:
                _decode_case(decode, data, t.limits, tally, desc)
        tally.max_seconds = max(tally.max_seconds, time.perf_counter() - t0)
        if peaks:
            tally.max_peak = max(tally.max_peak, peaks[-1])
            if peaks[-1] > bound:
                over.append(f"{desc}: peak {peaks[-1] / 2**20:.1f} MiB > bound {bound / 2**20:.1f} MiB")
    tally.extra["peak_bound_mib"] = round(bound / 2**20, 1) if measure else None
    tally.extra["limits"] = f"max_side={t.limits.max_side} max_pixels={t.limits.max_pixels}"
    rep = tally.publish()
    assert tally.cases == CASES
    assert not tally.failures, f"{len(tally.failures)} cases ended badly, first: " + " | ".join(tally.failures[:5])
    assert not over, f"{len(over)} cases over the memory bound, first: " + " | ".join(over[:3])
    # the fuzz reaches every layer: header checks, CRC, and the decoder itself
    assert rep["clean_decodes"] > 0 and len(rep["error_categories"]) >= 5, rep


FORGED = {
    "16384x16384 image": dict(height=MAX_SIDE, width=MAX_SIDE),
    "8192x1024 in one piece": dict(height=8192, width=1024),  # inside MAX_PIXELS, over MAX_TILE_PIXELS
    "side over the limit": dict(height=MAX_SIDE + 1, width=64),
    "35-bit sides": dict(height=(1 << 35) - 1, width=(1 << 35) - 1),
    "huge stream lengths": dict(lengths="huge"),
    "255 streams": dict(count=255),
    "huge params length": dict(params_len=(1 << 35) - 1),
    "overlong varints": dict(overlong={"height": 6}),
}


@pytest.fixture(scope="module")
def full_limits_codec(lic_ckpt):
    return load_codec(str(lic_ckpt))  # the format's own limits (MAX_SIDE, MAX_PIXELS, ...)


@pytest.mark.parametrize("forgery", list(FORGED), ids=lambda s: s.replace(" ", "-"))
def test_forged_header_is_rejected_before_allocation(full_limits_codec, forgery):
    codec = full_limits_codec
    valid = codec.encode(synthetic_image(64, 64))
    f = fields_of(valid)
    spec = dict(FORGED[forgery])
    if spec.pop("lengths", None):  # one more stream declared than present, every length 2**35 - 1
        f.count, f.lengths = len(f.streams) + 1, [(1 << 35) - 1] * len(f.streams)
    for key, value in spec.items():
        setattr(f, key, value)
    forged = f.build()  # valid CRC: only the header checks stand in the way
    peaks: list[int] = []
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with time_bound(5, forgery):
            with peak_rss(peaks) if peak_rss_supported() else _null():
                with pytest.raises(BitstreamError) as err:
                    codec.decode(forged, source=SOURCE)
        _, py_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    elapsed = time.perf_counter() - t0
    check_one_line(str(err.value), SOURCE)
    # A decoder honouring the claim would need ~declared x 3 floats for the output alone.
    assert py_peak < 1 << 20, f"{py_peak} bytes of Python objects allocated for a rejected header"
    assert not peaks or peaks[0] < 8 << 20, f"resident memory grew by {peaks[0]} bytes for a rejected header"
    assert elapsed < 2.0


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_limits_bound_the_work_a_valid_header_can_ask_for():
    """The bound the fuzz asserts is finite and small because the limits are: even the
    worst header inside the format's own limits asks for a bounded padded area."""
    assert max_padded_pixels(FUZZ_LIMITS, 64) == 128 * 256  # e.g. 65x252 pads to 128x256
    full = max_padded_pixels(Limits(), 64)
    assert MAX_PIXELS <= full <= 2 * MAX_PIXELS + 64 * MAX_SIDE


# ---- the mask-schedule parser ---------------------------------------------------------------------
def _mask_samples(rng: random.Random):
    from hdc_lightning.models.masks import MaskSchedule, uniform_schedule

    samples = [(uniform_schedule(lv), (rng.randint(1, 40), rng.randint(1, 40))) for lv in range(4)]
    for grid in [(4, 4), (8, 12), (5, 7), (16, 16), (33, 2), (1, 1), (64, 48)]:
        for region in (1, 2, 3, 5, 255):
            rh, rw = math.ceil(grid[0] / region), math.ceil(grid[1] / region)
            samples.append((MaskSchedule(region, tuple(rng.randrange(4) for _ in range(rh * rw))), grid))
    return samples


def test_fuzz_mask_schedule_parser():
    from hdc_lightning.models.masks import MaskSchedule

    samples = _mask_samples(random.Random(SEED))
    tally = Tally("mask schedule (MaskSchedule.from_bytes)")
    for i in range(CASES):
        rng = random.Random(f"{SEED}:masks:{i}")
        sched, grid = rng.choice(samples)
        data = bytearray(sched.to_bytes())
        op = rng.choice(("bitflip", "byte", "truncate", "extend", "tag", "region", "grid", "random", "big_grid"))
        if op == "bitflip":
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif op == "byte":
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif op == "truncate":
            data = data[: rng.randrange(len(data))]
        elif op == "extend":
            data += rng.randbytes(rng.randint(1, 8))
        elif op == "tag":
            data[0] = rng.choice((0x00, 0x13, 0x14, 0x1F, 0x20, 0x21, 0x30, 0xFF))
        elif op == "region" and len(data) > 1:
            data[1] = rng.choice((0, 1, 2, 255, rng.randrange(256)))
        elif op == "grid":
            grid = (rng.randint(1, 70), rng.randint(1, 70))
        elif op == "random":
            data = bytearray(rng.randbytes(rng.randint(0, 40)))
        elif op == "big_grid":  # what the largest image allows: 1024x1024 tokens
            grid = (MAX_SIDE // 16, MAX_SIDE // 16)
        tally.mutations[op] += 1
        desc = f"HDC_FUZZ_SEED={SEED} case {i} [{op}] {bytes(data[:12]).hex()} grid {grid}"
        t0 = time.perf_counter()
        with time_bound(CASE_SECONDS, desc):
            try:
                parsed = MaskSchedule.from_bytes(bytes(data), grid)
            except BitstreamError as e:
                check_one_line(str(e), "mask schedule:")
                tally.errors[error_category(str(e))] += 1
            except Exception as e:  # noqa: BLE001
                tally.failures.append(f"{desc}: {type(e).__name__}: {e}")
            else:
                mask = parsed.mask(*grid)
                if parsed.to_bytes() != bytes(data) or mask.shape != grid or mask.dtype != torch.bool:
                    tally.failures.append(f"{desc}: parsed to {parsed}, which does not round-trip")
                else:
                    tally.clean += 1
        tally.max_seconds = max(tally.max_seconds, time.perf_counter() - t0)
    rep = tally.publish()
    assert not tally.failures, " | ".join(tally.failures[:5])
    assert rep["clean_decodes"] > 0 and rep["errors"] > 0


# ---- the VQ index decoder ------------------------------------------------------------------------
def test_fuzz_vq_index_decoder():
    from hdc_lightning.models.masks import MaskSchedule
    from hdc_lightning.models.vq.index_coding import IndexPrior

    gen = torch.Generator().manual_seed(SEED)
    prior = IndexPrior(128)  # the tiny VQ codebook size
    with torch.no_grad():
        prior.logits.copy_(torch.randn(128, generator=gen) * 2)
    prior.update()
    coders = {True: prior.coder(checksum=True), False: prior.coder(checksum=False)}
    probs = torch.softmax(prior.logits.detach(), 0)
    rng0 = random.Random(SEED)
    samples = []
    for h, w in [(4, 4), (8, 8), (6, 10), (16, 16), (1, 3)]:
        idx = torch.multinomial(probs, h * w, replacement=True, generator=gen).view(h, w)
        masks = [
            None,
            MaskSchedule(2, tuple(rng0.randrange(4) for _ in range(math.ceil(h / 2) * math.ceil(w / 2)))).mask(h, w),
        ]
        for m in masks:
            for checksum, coder in coders.items():
                samples.append((checksum, (h, w), m, coder.encode_indices(idx, m)))
    tally = Tally("vq index stream (IndexCoder.decode_indices)")
    for i in range(CASES):
        rng = random.Random(f"{SEED}:vq:{i}")
        checksum, shape, mask, data = rng.choice(samples)
        data = bytearray(data)
        op = rng.choice(("bitflip", "byte", "truncate", "extend", "random", "zeros", "ones", "other_mask"))
        if op == "bitflip" and data:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif op == "byte" and data:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif op == "truncate":
            data = data[: rng.randrange(len(data) + 1)]
        elif op == "extend":
            data += rng.randbytes(rng.randint(1, 16))
        elif op == "random":
            data = bytearray(rng.randbytes(rng.choice((0, 3, 4, 8, 12, 64, 400))))
        elif op == "zeros":
            data = bytearray(len(data))
        elif op == "ones":
            data = bytearray(b"\xff" * len(data))
        elif op == "other_mask":
            mask = torch.from_numpy(np.random.default_rng(i).random(shape) < 0.5)
        tally.mutations[op] += 1
        desc = f"HDC_FUZZ_SEED={SEED} case {i} [{op}] checksum={checksum} shape={shape}"
        t0 = time.perf_counter()
        with time_bound(CASE_SECONDS, desc):
            try:
                out = coders[checksum].decode_indices(bytes(data), shape, mask)
            except BitstreamError as e:
                check_one_line(str(e), "index stream:")
                tally.errors[error_category(str(e))] += 1
            except Exception as e:  # noqa: BLE001
                tally.failures.append(f"{desc}: {type(e).__name__}: {e}")
            else:
                sent = mask if mask is not None else torch.ones(shape, dtype=torch.bool)
                ok = (
                    out.shape == shape
                    and bool((out[sent] >= 0).all() and (out[sent] < 128).all())
                    and bool((out[~sent] == -1).all())
                )
                if ok:
                    tally.clean += 1
                else:
                    tally.failures.append(f"{desc}: decoded map out of range or wrong shape")
        tally.max_seconds = max(tally.max_seconds, time.perf_counter() - t0)
    rep = tally.publish()
    assert not tally.failures, " | ".join(tally.failures[:5])
    assert rep["clean_decodes"] > 0 and rep["errors"] > 0
