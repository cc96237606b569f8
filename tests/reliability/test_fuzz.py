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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from hdc_lightning.codec import load_codec, unpack
from hdc_lightning.codec.container import MAX_PIXELS, MAX_SIDE, Limits
from hdc_lightning.errors import BitstreamError
from tests.helpers.fuzzing import Mutator, fields_of
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
