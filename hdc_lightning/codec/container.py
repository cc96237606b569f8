"""The versioned ``.hdc`` container shared by every codec (LIC-only, hybrid).

Layout (format version 2; integers little-endian, ``varint`` = unsigned LEB128)::

    field            size        meaning
    magic            3           b"HDC"
    version          1           FORMAT_VERSION
    kind             1           codec kind (1 = lic, 2 = hybrid, ...; see codec.api; TILED_KIND:
                                 a tiled image, each stream one tile's own file, codec.tiles)
    model id         8           fingerprint of (registry name, preset, args, weights)
    height, width    varint ×2   image size before padding, 1..MAX_SIDE each
    params length    varint      0..MAX_PARAMS_BYTES, then that many codec-specific bytes
    stream count     1           1..MAX_STREAMS
    stream lengths   varint ×(count-1)   the last stream takes the rest of the payload
    payload          ...         the streams, concatenated in order
    crc32            4           CRC-32 of everything before it

Everything is validated against the declared limits and the actual data size before
any buffer is allocated for the payload; a file of one piece (not tiled) declares at most
``max_tile_pixels``, so what one decode allocates is bounded whatever the image size; a file that fails any check raises
:class:`~hdc_lightning.errors.BitstreamError` with a one-line message. A LIC-only
file (one stream) at Kodak size has 23 bytes of header and CRC.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from hdc_lightning.errors import BitstreamError

MAGIC = b"HDC"
FORMAT_VERSION = 2
# Why each older version is refused (one line each).
RETIRED_VERSIONS = {
    1: "its entropy parameters were computed in floats and its CDF tables rebuilt at load, so it "
    "decodes only on the CPU that wrote it; decode it with that hdc release or re-encode the original",
}
MODEL_ID_BYTES = 8
CRC_BYTES = 4

MAX_SIDE = 16384  # pixels, height and width each
MAX_PIXELS = 1 << 25  # 33.5 Mpx (e.g. 8192 x 4096), tiled beyond MAX_TILE_PIXELS
# One decode's memory grows with the pixels it sees (full-resolution convolutions), so a file
# of one piece holds at most this many (4.2 Mpx: 2048 x 2048, so the CLIC and Tecnick test
# images code whole); larger images are tiled.
MAX_TILE_PIXELS = 1 << 22
TILED_KIND = 16  # the kind byte of a tiled file (its params name the codec kind of its tiles)
MAX_STREAMS = 64
MAX_PARAMS_BYTES = 1024
MAX_FILE_BYTES = 1 << 28  # 256 MiB
_MAX_VARINT_BYTES = 5

# magic, version, kind, model id, 2 one-byte varints, params length, stream count, crc
MIN_FILE_BYTES = len(MAGIC) + 1 + 1 + MODEL_ID_BYTES + 2 + 1 + 1 + CRC_BYTES


@dataclass(frozen=True)
class Limits:
    """Bounds a reader enforces; lower them to harden a service, raise them knowingly."""

    max_side: int = MAX_SIDE
    max_pixels: int = MAX_PIXELS
    max_tile_pixels: int = MAX_TILE_PIXELS
    max_streams: int = MAX_STREAMS
    max_params_bytes: int = MAX_PARAMS_BYTES
    max_file_bytes: int = MAX_FILE_BYTES


@dataclass(frozen=True)
class Header:
    kind: int
    model_id: bytes
    height: int
    width: int
    params: bytes
    stream_lengths: tuple[int, ...]
    size: int  # bytes of container overhead: everything but the payload (crc included)


@dataclass(frozen=True)
class Container:
    header: Header
    streams: list[bytes]


def bits_per_pixel(nbytes: int, pixels: int) -> float:
    """The rate of a coded image: its bytes × 8 over its pixels (header included, as counted
    everywhere in the project)."""
    return nbytes * 8 / pixels


def varint(value: int) -> bytes:
    if value < 0:
        raise ValueError(f"varint of a negative value {value}")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def pack(
    kind: int,
    model_id: bytes,
    height: int,
    width: int,
    streams: Sequence[bytes],
    params: bytes = b"",
    limits: Limits = Limits(),
) -> bytes:
    """Build a ``.hdc`` file; refuses anything a reader with ``limits`` would reject."""
    if not 0 <= kind <= 255:
        raise ValueError(f"codec kind {kind} does not fit one byte")
    if len(model_id) != MODEL_ID_BYTES:
        raise ValueError(f"model id must be {MODEL_ID_BYTES} bytes, got {len(model_id)}")
    _check_size(height, width, limits, "image to encode", kind == TILED_KIND)
    if not 1 <= len(streams) <= limits.max_streams:
        raise BitstreamError(f"image to encode: {len(streams)} streams, the format allows 1..{limits.max_streams}")
    if len(params) > limits.max_params_bytes:
        raise BitstreamError(f"image to encode: {len(params)} codec parameter bytes, limit {limits.max_params_bytes}")
    head = bytearray(MAGIC)
    head += bytes((FORMAT_VERSION, kind))
    head += model_id
    head += varint(height) + varint(width)
    head += varint(len(params)) + params
    head.append(len(streams))
    for s in streams[:-1]:
        head += varint(len(s))
    body = bytes(head) + b"".join(bytes(s) for s in streams)
    if len(body) + CRC_BYTES > limits.max_file_bytes:
        raise BitstreamError(
            f"image to encode: {len(body) + CRC_BYTES} bytes exceeds the {limits.max_file_bytes}-byte limit"
        )
    return body + struct.pack("<I", zlib.crc32(body))


def overhead_bytes(height: int, width: int, stream_lengths: Sequence[int], params_len: int = 0) -> int:
    """Container bytes around the payload (header + crc), without building the file."""
    return (
        len(MAGIC)
        + 2
        + MODEL_ID_BYTES
        + len(varint(height))
        + len(varint(width))
        + len(varint(params_len))
        + params_len
        + 1
        + sum(len(varint(n)) for n in stream_lengths[:-1])
        + CRC_BYTES
    )


def _check_size(height: int, width: int, limits: Limits, source: str, tiled: bool) -> None:
    if not (1 <= height <= limits.max_side and 1 <= width <= limits.max_side):
        raise BitstreamError(f"{source}: image size {height}x{width} outside 1..{limits.max_side} per side")
    if height * width > limits.max_pixels:
        raise BitstreamError(f"{source}: image size {height}x{width} exceeds the {limits.max_pixels}-pixel limit")
    if not tiled and height * width > limits.max_tile_pixels:
        raise BitstreamError(
            f"{source}: image size {height}x{width} in one piece exceeds the {limits.max_tile_pixels}-pixel "
            "limit of one tile (larger images are coded in tiles)"
        )


class Reader:
    def __init__(self, data: memoryview, end: int, source: str):
        self.data, self.pos, self.end, self.source = data, 0, end, source

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > self.end:
            raise BitstreamError(f"{self.source}: truncated header (reading {what})")
        out = bytes(self.data[self.pos : self.pos + n])
        self.pos += n
        return out

    def varint(self, what: str) -> int:
        value = 0
        for i in range(_MAX_VARINT_BYTES):
            (byte,) = self.take(1, what)
            value |= (byte & 0x7F) << (7 * i)
            if not byte & 0x80:
                return value
        raise BitstreamError(f"{self.source}: malformed header ({what} is longer than {_MAX_VARINT_BYTES} bytes)")


def unpack(data: bytes | bytearray | memoryview, limits: Limits = Limits(), source: str = "<bytes>") -> Container:
    """Parse and validate a ``.hdc`` file; ``source`` names it in error messages."""
    view = memoryview(data).cast("B")
    n = len(view)
    if n > limits.max_file_bytes:
        raise BitstreamError(f"{source}: {n} bytes exceeds the {limits.max_file_bytes}-byte limit")
    if n == 0:
        raise BitstreamError(f"{source}: empty file (0 bytes), not an .hdc file")
    if bytes(view[: len(MAGIC)]) != MAGIC:
        raise BitstreamError(f"{source}: not an .hdc file (bad magic bytes)")
    if n < MIN_FILE_BYTES:
        raise BitstreamError(f"{source}: truncated ({n} bytes, an .hdc file has at least {MIN_FILE_BYTES})")
    version = view[len(MAGIC)]
    if version in RETIRED_VERSIONS:
        raise BitstreamError(f"{source}: format version {version}: {RETIRED_VERSIONS[version]}")
    if version != FORMAT_VERSION:
        raise BitstreamError(f"{source}: format version {version}, this reader supports version {FORMAT_VERSION}")
    body_end = n - CRC_BYTES
    (stored_crc,) = struct.unpack("<I", view[body_end:])
    if zlib.crc32(view[:body_end]) != stored_crc:
        raise BitstreamError(f"{source}: CRC mismatch, the file is truncated or corrupted")

    r = Reader(view, body_end, source)
    r.pos = len(MAGIC) + 1
    (kind,) = r.take(1, "codec kind")
    model_id = r.take(MODEL_ID_BYTES, "model id")
    height, width = r.varint("height"), r.varint("width")
    _check_size(height, width, limits, source, kind == TILED_KIND)
    params_len = r.varint("params length")
    if params_len > limits.max_params_bytes:
        raise BitstreamError(f"{source}: {params_len} codec parameter bytes, limit {limits.max_params_bytes}")
    params = r.take(params_len, "codec params")
    (count,) = r.take(1, "stream count")
    if not 1 <= count <= limits.max_streams:
        raise BitstreamError(f"{source}: {count} streams, the format allows 1..{limits.max_streams}")
    lengths = [r.varint(f"length of stream {i}") for i in range(count - 1)]
    payload = body_end - r.pos
    if sum(lengths) > payload:
        raise BitstreamError(f"{source}: stream lengths add up to {sum(lengths)} bytes, only {payload} present")
    lengths.append(payload - sum(lengths))
    streams, pos = [], r.pos
    for length in lengths:
        streams.append(bytes(view[pos : pos + length]))
        pos += length
    header = Header(kind, model_id, height, width, params, tuple(lengths), n - payload)
    return Container(header, streams)
