"""Entropy coding of VQ index maps (whole or any masked subset) with compressai's rANS coder.

The prior is a learned unconditional categorical distribution over the K codes
(:class:`IndexPrior`: a ``logits`` parameter trained with the cross-entropy of the
encoder's indices). Its integer CDF is built once by :meth:`IndexPrior.update` with
integer arithmetic from float64 probabilities and stored as a buffer, so the encoder
and the decoder use the very same table (the decoder never recomputes it from floats).

Stream layout (all bytes counted in the bitrate)::

    [crc32 of (table fingerprint + payload), 4 bytes, optional] [rANS payload]

The CRC covers the CDF table's fingerprint as well, so a stream decoded with another
model's prior fails with :class:`BitstreamError` instead of returning wrong indices.
"""

from __future__ import annotations

import zlib

import numpy as np
import torch
from compressai.ans import RansDecoder, RansEncoder
from torch import nn

from hdc_lightning.errors import BitstreamError

PRECISION = 16  # compressai's rANS works with 16-bit CDFs
# compressai's RansEncoder sizes its output buffer by the symbol count and overruns it
# (heap corruption) for 1-3 symbols: short streams are padded with the likeliest symbol.
MIN_SYMBOLS = 8


def quantize_pmf(pmf: np.ndarray, precision: int = PRECISION) -> np.ndarray:
    """Integer CDF (int32, length K+2) of ``pmf`` for compressai's rANS coder.

    Every symbol gets a frequency of at least 1 and the trailing overflow bin exactly 1;
    leftovers of the flooring go to the largest fractional parts (stable ties), so the
    result depends only on the float64 ``pmf`` values.
    """
    pmf = np.clip(np.asarray(pmf, dtype=np.float64), 0.0, None)
    k = pmf.shape[0]
    total = 1 << precision
    if k + 1 > total:
        raise ValueError(f"{k} symbols do not fit a {precision}-bit CDF")
    pmf = pmf / pmf.sum() if pmf.sum() > 0 else np.full(k, 1.0 / k)
    budget = total - 1 - k  # after the minimum of 1 per symbol and the overflow bin
    scaled = pmf * budget
    freq = 1 + np.floor(scaled).astype(np.int64)
    left = total - 1 - int(freq.sum())
    order = np.argsort(-(scaled - np.floor(scaled)), kind="stable")
    freq[order[:left]] += 1
    cdf = np.concatenate([[0], np.cumsum(np.concatenate([freq, [1]]))])
    assert cdf[-1] == total
    return cdf.astype(np.int32)


class IndexPrior(nn.Module):
    """Learned categorical prior over the K codes, with its integer CDF table as a buffer."""

    def __init__(self, codebook_size: int):
        super().__init__()
        self.codebook_size = codebook_size
        self.logits = nn.Parameter(torch.zeros(codebook_size))
        self.register_buffer("cdf", torch.from_numpy(quantize_pmf(np.full(codebook_size, 1.0))))
        # The logits `cdf` was built from: update() keeps the stored table when they are
        # unchanged, so a decoder that calls update() after loading never recomputes it
        # from floats (float64 exp may differ by an ulp between CPUs and flip a frequency).
        self.register_buffer("cdf_logits", torch.zeros(codebook_size))

    def loss(self, indices: torch.Tensor) -> torch.Tensor:
        """Cross-entropy (nats per index) of ``indices``; trains only ``logits``."""
        flat = indices.detach().flatten()
        return nn.functional.cross_entropy(self.logits.float().expand(flat.numel(), -1), flat)

    def bits(self, indices: torch.Tensor) -> torch.Tensor:
        """Ideal code length of ``indices`` under the current logits (bits, an estimate)."""
        logp = torch.log_softmax(self.logits.detach().double(), dim=0)
        return -(logp[indices.flatten()].sum() / np.log(2.0)).float()

    @torch.no_grad()
    def update(self, force: bool = False) -> bool:
        """Rebuild the integer CDF table if the logits changed since it was built; True if rebuilt."""
        logits = self.logits.detach().float()
        if not force and torch.equal(logits.cpu(), self.cdf_logits.cpu()):
            return False
        probs = torch.softmax(logits.double().cpu(), dim=0).numpy()
        self.cdf.copy_(torch.from_numpy(quantize_pmf(probs)).to(self.cdf.device))
        self.cdf_logits.copy_(logits)
        return True

    def coder(self, checksum: bool = True) -> IndexCoder:
        return IndexCoder(self.cdf, checksum=checksum)


class IndexCoder:
    """Encode/decode an index map ``[h, w]`` (or the positions where ``mask`` is True)."""

    def __init__(self, cdf: torch.Tensor | np.ndarray, checksum: bool = True):
        table = np.asarray(cdf.detach().cpu() if isinstance(cdf, torch.Tensor) else cdf, dtype=np.int64)
        if table.ndim != 1 or table.shape[0] < 3 or table[0] != 0 or table[-1] != 1 << PRECISION:
            raise ValueError("cdf must be a 1-D integer table from 0 to 2**16 (see quantize_pmf)")
        if np.any(np.diff(table) <= 0):
            raise ValueError("cdf must be strictly increasing")
        self.codebook_size = table.shape[0] - 2
        self.checksum = checksum
        self._cdfs = [table.astype(int).tolist()]
        self._sizes = [table.shape[0]]
        self._fingerprint = table.astype("<i4").tobytes()
        self._filler = int(np.argmax(np.diff(table)[:-1]))

    def _positions(self, shape: tuple[int, int], mask: torch.Tensor | None) -> torch.Tensor | None:
        if mask is None:
            return None
        if mask.dtype != torch.bool or tuple(mask.shape) != tuple(shape):
            raise ValueError(f"mask must be a BoolTensor of shape {tuple(shape)}, got {mask.dtype} {tuple(mask.shape)}")
        return mask.cpu()

    def encode_indices(self, indices: torch.Tensor, mask: torch.Tensor | None = None) -> bytes:
        """Bytes of ``indices[mask]`` (raster order; all positions when ``mask`` is None)."""
        if indices.dim() != 2:
            raise ValueError(f"indices must be [h, w], got {tuple(indices.shape)}")
        sel = self._positions(tuple(indices.shape), mask)
        values = indices.cpu().long()
        values = values[sel] if sel is not None else values.flatten()
        if values.numel() == 0:
            return b""
        if int(values.min()) < 0 or int(values.max()) >= self.codebook_size:
            raise ValueError(f"indices out of range [0, {self.codebook_size})")
        symbols = values.tolist() + [self._filler] * max(0, MIN_SYMBOLS - values.numel())
        zeros = [0] * len(symbols)
        payload = RansEncoder().encode_with_indexes(symbols, zeros, self._cdfs, self._sizes, [0])
        return self._crc(payload) + payload if self.checksum else payload

    def decode_indices(self, data: bytes, shape: tuple[int, int], mask: torch.Tensor | None = None) -> torch.Tensor:
        """Inverse of :meth:`encode_indices`: ``[h, w]`` long map, -1 where ``mask`` is False."""
        h, w = (int(s) for s in shape)
        sel = self._positions((h, w), mask)
        n = int(sel.sum()) if sel is not None else h * w
        out = torch.full((h, w), -1, dtype=torch.long)
        if n == 0:
            if data:
                raise BitstreamError(f"index stream: {len(data)} bytes where no indices are expected")
            return out
        payload = self._check(bytes(data))
        if len(payload) < 8 or len(payload) % 4:
            raise BitstreamError(f"index stream: payload of {len(payload)} bytes is not a rANS stream")
        # Zero words after the payload: a forged stream can make the decoder read past its
        # end (overflow/bypass symbols); it then reads zeros, never foreign memory.
        padded = payload + bytes(16 * n + 256)
        count = max(n, MIN_SYMBOLS)
        symbols = RansDecoder().decode_with_indexes(padded, [0] * count, self._cdfs, self._sizes, [0])
        values = torch.tensor(symbols[:n], dtype=torch.long)
        if values.numel() != n or int(values.min()) < 0 or int(values.max()) >= self.codebook_size:
            raise BitstreamError("index stream: decoded indices out of range (corrupt stream or another model)")
        if sel is None:
            return values.view(h, w)
        out[sel] = values
        return out

    def _crc(self, payload: bytes) -> bytes:
        return zlib.crc32(payload, zlib.crc32(self._fingerprint)).to_bytes(4, "little")

    def _check(self, data: bytes) -> bytes:
        if not self.checksum:
            return data
        if len(data) < 4:
            raise BitstreamError(f"index stream: {len(data)} bytes is shorter than its checksum")
        crc, payload = data[:4], data[4:]
        if crc != self._crc(payload):
            raise BitstreamError("index stream: checksum mismatch (corrupt stream or another model's prior)")
        return payload
