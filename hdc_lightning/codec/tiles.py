"""Tiled files: an image larger than one tile is coded as a grid of ordinary ``.hdc`` files.

What one decode allocates grows with the pixels it sees (the transforms run at full
resolution, and the decoders' normalisation sees the whole input), so the format bounds a
file of one piece to ``Limits.max_tile_pixels`` (4.2 Mpx) and codes anything larger in
tiles. The decoder then holds one tile's networks at a time plus the output canvas: its peak
memory is bounded for every image the format admits (docs/format.md#tiled-files).

A tiled file is a container of kind ``TILED_KIND`` whose header carries the whole image's
size and the codec's model id, and::

    params    version (1) | kind of the tiles (1) | tile size T (varint)
    streams   one per tile, in raster order, each a complete .hdc file of its box

The boxes are :func:`tile_boxes` of (height, width, T): the image split evenly into
⌈H/T⌉ × ⌈W/T⌉ boxes of at most T×T pixels (no sliver at the border). A tile is coded
without its neighbours, so its borders may show at low rates; the bytes are honest (one
small header per tile, counted in the rate).

:class:`TiledCoding` gives a codec ``encode``/``decode`` that do this around its
``encode_one``/``decode_one``.
"""

from __future__ import annotations

import abc
import math
from dataclasses import replace
from typing import Any

import torch
from torch import Tensor

from hdc_lightning.codec.api import Decoded, check_model_id
from hdc_lightning.codec.container import MAGIC, TILED_KIND, Limits, Reader, pack, unpack, varint
from hdc_lightning.errors import BitstreamError, ConfigError, DataError

TILES_VERSION = 1
DEFAULT_TILE = 1024  # what images over the one-piece limit are split into (about 1 Mpx a tile)
MIN_TILE = 64  # smaller tiles would be mostly padding (the codecs pad to multiples of 64)


def check_image(image: Tensor, limits: Limits) -> None:
    """An image an encoder takes: float Tensor[3,H,W] inside the format's limits (tiles aside)."""
    if not isinstance(image, Tensor) or image.dim() != 3 or image.shape[0] != 3 or not image.is_floating_point():
        raise DataError(f"image to encode must be a float Tensor[3,H,W] in [0,1], got {getattr(image, 'shape', image)}")
    h, w = image.shape[-2:]
    if not (1 <= h <= limits.max_side and 1 <= w <= limits.max_side) or h * w > limits.max_pixels:
        raise DataError(
            f"image of {w}x{h} is outside the format limits ({limits.max_side} per side, {limits.max_pixels} pixels)"
        )


def _splits(length: int, tile: int) -> list[tuple[int, int]]:
    n = max(1, math.ceil(length / tile))
    edges = [round(i * length / n) for i in range(n + 1)]
    return [(edges[i], edges[i + 1] - edges[i]) for i in range(n)]


def tile_boxes(height: int, width: int, tile: int) -> list[tuple[int, int, int, int]]:
    """(top, left, h, w) boxes of at most ``tile``×``tile`` covering the image, in raster order."""
    if tile < 1:
        raise ValueError(f"tile size must be positive, got {tile}")
    return [(top, left, h, w) for top, h in _splits(height, tile) for left, w in _splits(width, tile)]


def max_tile(limits: Limits) -> int:
    """The largest tile side whose square a file of one piece may hold."""
    return math.isqrt(limits.max_tile_pixels)


def plan(height: int, width: int, tile: int | None, limits: Limits) -> int | None:
    """The tile size to code an image with, or None for one piece.

    ``tile``: None = one piece up to the limit, tiles of DEFAULT_TILE beyond; 0 = one piece
    (refused over the limit); N = tiles of at most N×N (one piece if the image fits one).
    """
    pixels = height * width
    if tile is None:
        if pixels <= limits.max_tile_pixels:
            return None
        tile = min(DEFAULT_TILE, max_tile(limits))
    elif tile == 0:
        if pixels > limits.max_tile_pixels:
            raise DataError(
                f"image of {width}x{height} ({pixels / 2**20:.1f} Mpx) is over the "
                f"{limits.max_tile_pixels / 2**20:.1f} Mpx a file of one piece may hold; code it in tiles"
            )
        return None
    else:
        check_tile(tile, limits)
    if height <= tile and width <= tile:
        return None
    n = len(tile_boxes(height, width, tile))
    if n > limits.max_streams:
        raise ConfigError(
            f"tiles of {tile} px cut a {width}x{height} image into {n} tiles, the format holds at most "
            f"{limits.max_streams}; give a larger tile"
        )
    return tile


def _tile_fits(tile: int, limits: Limits) -> bool:
    return MIN_TILE <= tile <= max_tile(limits)


def check_tile(tile: int | None, limits: Limits = Limits(), flag: str = "tile") -> None:
    """A tile option the format admits: None (the default plan), 0 (never tile) or
    MIN_TILE..max_tile(limits)."""
    if tile is None:
        return
    if not isinstance(tile, int) or not (tile == 0 or _tile_fits(tile, limits)):
        raise ConfigError(
            f"{flag} must be 0 (never) or {MIN_TILE}..{max_tile(limits)} pixels (a tile holds at most "
            f"{limits.max_tile_pixels} pixels), got {tile}"
        )


def is_tiled(data: bytes | bytearray | memoryview) -> bool:
    """True when ``data`` starts like a tiled ``.hdc`` file (``TiledCoding.decode`` checks the rest)."""
    head = bytes(memoryview(data)[: len(MAGIC) + 2])
    return len(head) == len(MAGIC) + 2 and head.startswith(MAGIC) and head[-1] == TILED_KIND


def tile_count(data: bytes) -> int:
    """How many tiles a file holds (1 for a file of one piece)."""
    return len(unpack(data).streams) if is_tiled(data) else 1


def _params(kind: int, tile: int) -> bytes:
    return bytes((TILES_VERSION, kind)) + varint(tile)


def _read_params(params: bytes, source: str) -> tuple[int, int]:
    """(kind of the tiles, tile size) of a tiled file's params."""
    if len(params) < 3 or params[0] != TILES_VERSION:
        raise BitstreamError(f"{source}: malformed tile parameters ({len(params)} bytes)")
    r = Reader(memoryview(params), len(params), source)
    r.pos = 2
    tile = r.varint("tile size")
    if r.pos != len(params):
        raise BitstreamError(f"{source}: malformed tile parameters (tile size)")
    return params[1], tile


class TiledCoding(abc.ABC):
    """Mixin: ``encode``/``decode`` of any image size the format admits, in tiles when needed.

    The codec supplies ``kind``, ``model_id``, ``limits``, ``tile`` (the encode option, see
    :func:`plan`) and ``encode_one(image, **kw)`` / ``decode_one(data, source=, **options)``
    for a file of one piece.
    """

    kind: int
    limits: Limits
    tile: int | None

    @abc.abstractmethod
    def encode_one(self, image: Tensor, **kw: Any) -> bytes: ...

    @abc.abstractmethod
    def decode_one(self, data: bytes, *, source: str = "<bytes>", **options: Any) -> Any: ...

    def encode(self, image: Tensor, **kw: Any) -> bytes:
        """One ``.hdc`` file of ``image`` (Tensor[3,H,W] in [0,1]); ``kw`` goes to every tile."""
        check_image(image, self.limits)
        h, w = (int(s) for s in image.shape[-2:])
        tile = plan(h, w, self.tile, self.limits)
        if tile is None:
            return self.encode_one(image, **kw)
        files = [
            self.encode_one(image[:, top : top + th, left : left + tw].contiguous(), **kw)
            for top, left, th, tw in tile_boxes(h, w, tile)
        ]
        return pack(TILED_KIND, self.model_id.digest, h, w, files, params=_params(self.kind, tile), limits=self.limits)

    def decode(self, data: bytes, *, source: str = "<bytes>", **options: Any):
        """The image of a file of one piece or of a tiled one, tile by tile."""
        if not is_tiled(data):
            return self.decode_one(data, source=source, **options)
        container = unpack(data, self.limits, source)
        header = container.header
        kind, tile = _read_params(header.params, source)
        check_model_id(replace(header, kind=kind), self, source)  # the tiles' kind and this codec's weights
        if not _tile_fits(tile, self.limits):
            raise BitstreamError(f"{source}: tile size {tile} outside {MIN_TILE}..{max_tile(self.limits)}")
        boxes = tile_boxes(header.height, header.width, tile)
        if len(boxes) != len(container.streams):
            raise BitstreamError(
                f"{source}: {len(container.streams)} tiles, a {header.width}x{header.height} image in tiles of "
                f"{tile} has {len(boxes)}"
            )
        wheres = [f"{source} (tile {i + 1} of {len(boxes)})" for i in range(len(boxes))]
        for (_, _, th, tw), part, where in zip(boxes, container.streams, wheres):  # every tile checked first
            inner = unpack(part, self.limits, where).header
            if inner.kind != kind or (inner.height, inner.width) != (th, tw):
                raise BitstreamError(
                    f"{where}: holds a {inner.width}x{inner.height} image of kind {inner.kind}, its box is "
                    f"{tw}x{th} of kind {kind}"
                )
        canvas = torch.empty(3, header.height, header.width)
        stream_bytes: dict[str, int] = {}
        header_bytes = header.size
        for (top, left, th, tw), part, where in zip(boxes, container.streams, wheres):
            decoded = self.decode_one(part, source=where, **options)
            canvas[:, top : top + th, left : left + tw] = decoded.image
            for name, n in decoded.stream_bytes.items():
                stream_bytes[name] = stream_bytes.get(name, 0) + n
            header_bytes += decoded.header_bytes
        return Decoded(canvas, stream_bytes, header_bytes)
