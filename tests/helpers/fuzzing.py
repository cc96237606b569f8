"""Valid ``.hdc`` files taken apart and damaged: the fuzz's field model and mutator.

``Fields`` rebuilds a file from its parsed header with any value changed (overlong varints
and wrong declared lengths included); ``Mutator`` applies random structural and byte-level
damage, resealing the CRC the way a forger would.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, field

from hdc_lightning.codec import unpack
from hdc_lightning.codec.container import CRC_BYTES, FORMAT_VERSION, MAGIC, MAX_SIDE, MAX_STREAMS, Limits


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
