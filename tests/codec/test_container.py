"""The .hdc container: round trip, declared limits, and one-line errors for bad files."""

from __future__ import annotations

import struct
import zlib

import pytest

from hdc_lightning.codec.container import (
    FORMAT_VERSION,
    MAX_PIXELS,
    MAX_SIDE,
    MIN_FILE_BYTES,
    Limits,
    overhead_bytes,
    pack,
    unpack,
)
from hdc_lightning.errors import BitstreamError

ID = bytes(range(8))
STREAMS = [b"a" * 300, b"", b"b" * 5, b"c" * 1000, b"z" * 70]


def _reseal(body: bytes) -> bytes:
    """Recompute the CRC, as a forger would."""
    return body + struct.pack("<I", zlib.crc32(body))


def _error(data: bytes, **kw) -> str:
    with pytest.raises(BitstreamError) as e:
        unpack(data, source="f.hdc", **kw)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("f.hdc: ")
    return msg


def test_round_trip_and_overhead():
    data = pack(1, ID, 512, 768, STREAMS, params=b"\x07\x08")
    c = unpack(data)
    h = c.header
    assert (h.kind, h.model_id, h.height, h.width, h.params) == (1, ID, 512, 768, b"\x07\x08")
    assert c.streams == STREAMS and list(h.stream_lengths) == [len(s) for s in STREAMS]
    assert h.size == len(data) - sum(map(len, STREAMS))
    assert h.size == overhead_bytes(512, 768, [len(s) for s in STREAMS], params_len=2)


def test_lic_header_fits_32_bytes_at_kodak_size():
    assert overhead_bytes(512, 768, [7000]) == 23  # LIC: one stream
    assert overhead_bytes(512, 768, [400, 420, 1800, 1900, 90]) <= 32  # even with five


def test_every_truncation_is_an_error():
    data = pack(1, ID, 64, 64, [b"x" * 40, b"y" * 9])
    for n in range(len(data)):
        _error(data[:n])


def test_every_single_byte_corruption_is_an_error():
    data = pack(1, ID, 64, 64, [b"x" * 20, b"y" * 9])
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 0x41
        _error(bytes(bad))


@pytest.mark.parametrize("blob", [b"", b"\x89PNG\r\n\x1a\n" + bytes(40), bytes(100), b"HD"])
def test_foreign_files(blob):
    assert "not an .hdc file" in _error(blob) or "truncated" in _error(blob)


def _forge(
    height: int, width: int, count: int = 2, lengths=(3,), params_len: int = 0, version: int = FORMAT_VERSION
) -> bytes:
    from hdc_lightning.codec.container import varint as _varint

    body = b"HDC" + bytes((version, 1)) + ID + _varint(height) + _varint(width) + _varint(params_len)
    body += bytes(min(params_len, 8)) + bytes((count,)) + b"".join(_varint(n) for n in lengths) + b"p" * 8
    return _reseal(body)


def test_forged_headers_fail_before_allocation():
    assert "outside 1..16384" in _error(_forge(MAX_SIDE + 1, 16))
    assert "outside" in _error(_forge(0, 16))
    assert f"{MAX_PIXELS}-pixel limit" in _error(_forge(MAX_SIDE, MAX_SIDE))
    assert "streams, the format allows" in _error(_forge(64, 64, count=0, lengths=()))
    assert "streams, the format allows" in _error(_forge(64, 64, count=200, lengths=()))
    assert "only 8 present" in _error(_forge(64, 64, lengths=(1 << 30,)))
    assert "parameter bytes" in _error(_forge(64, 64, params_len=1 << 20))
    assert "format version 9" in _error(_forge(64, 64, version=9))
    assert "longer than" in _error(_reseal(b"HDC" + bytes((FORMAT_VERSION, 1)) + ID + b"\xff" * 12))


def test_files_of_the_float_format_are_refused_with_the_reason():
    err = _error(_forge(64, 64, version=1))
    assert "format version 1:" in err and "re-encode" in err and "\n" not in err


def test_reader_limits_are_configurable():
    data = pack(1, ID, 300, 300, [b"x"])
    assert "exceeds the 10000-pixel limit" in _error(data, limits=Limits(max_pixels=10_000))
    assert "bytes exceeds" in _error(data, limits=Limits(max_file_bytes=MIN_FILE_BYTES))


def test_pack_refuses_what_a_reader_would_reject():
    with pytest.raises(BitstreamError):
        pack(1, ID, MAX_SIDE + 1, 1, [b"x"])
    with pytest.raises(BitstreamError):
        pack(1, ID, 8, 8, [])
    with pytest.raises(ValueError):
        pack(1, b"short", 8, 8, [b"x"])
