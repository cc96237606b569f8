"""Target-bpp rate control: the file of best expected quality that is at most R bpp.

Candidates are real encodes: every rate point given (a checkpoint; a ladder's run folder
stands for all its points) × every mask level of the hybrid codec (a LIC-only point has
one candidate, its plain encode). Expected quality orders them, best first::

    rate points   by the bytes of their LIC streams on this image (measured as the point's
                  ``none`` file): x̂_lic is the fidelity output *and* what T and the
                  latent correction condition on, so a better base helps both outputs
    mask levels   by the share of VQ indices sent: full (1) > auto (with the default
                  fractions 0.5/0.3/0.2 of 1/9, 1/4, full: 0.33; ranked by its share on
                  this image) > 1/4 > 1/9 > none (0): every sent index is ground truth
                  that T need not guess, so the perceptual output only gains

The choice is the first candidate in that order whose file fits. Search, per image::

    each point: encode `none` (the point's smallest file; nothing fits → one-line error
                naming the smallest reachable bpp)
    best point whose `none` fits: encode full, then the next levels down, until one fits

so a budget that the full mask meets costs N points + 1 encodes, and the worst case is
N + 4; a single point walks full → … → none directly (1 encode when full fits, at most 5). The chosen file is byte for byte what ``hdc compress --ckpt POINT --mask LEVEL``
writes: the decoder needs nothing it does not already read (the header names the weights
and the mask mode).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from torch import Tensor

from hdc_lightning.codec.container import bits_per_pixel
from hdc_lightning.errors import ConfigError
from hdc_lightning.rundir import resolve_checkpoints, run_name_of


class Point(NamedTuple):
    label: str  # what the user called it (checkpoint file, run name or shipped model name)
    codec: Any  # an ImageCodec


class Choice(NamedTuple):
    data: bytes
    point: str  # its label
    index: int  # its position in the points given
    mask: str | None  # None for a codec without mask levels
    bpp: float
    encodes: int  # real encodes this choice took
    fits: bool  # False only when rate control was asked to fall back (evaluation)


def parse_targets(text: str, flag: str = "--target-bpp") -> list[float]:
    """``"0.02,0.05"`` → [0.02, 0.05]; each a finite number > 0, else ConfigError (one line)."""
    out = []
    for item in str(text).split(","):
        try:
            r = float(item)
        except ValueError:
            raise ConfigError(f"{flag} {item.strip()!r}: not a number; give bits per pixel, e.g. 0.05") from None
        if not (math.isfinite(r) and r > 0):
            raise ConfigError(f"{flag} {item.strip()}: must be a positive number of bits per pixel")
        out.append(r)
    return out


def resolve_points(refs: Sequence[str]) -> list[str]:
    """Checkpoint files and shipped model names as given; a run or ladder folder → its checkpoints."""
    from hdc_lightning import pretrained

    out: list[str] = []
    for ref in refs:
        if pretrained.is_pretrained(ref) or Path(ref).is_file():
            out.append(str(ref))
            continue

        out += [str(p) for p in resolve_checkpoints([ref])]
    return out


def point_label(ref: str) -> str:
    """runs/NAME/checkpoints/last.ckpt → NAME; a file → its name; a shipped model → its name."""
    return run_name_of(ref) or Path(ref).name


def mask_order(codec: Any, image: Tensor) -> list[str | None]:
    """The codec's mask levels, most VQ indices sent first; ``[None]`` without mask levels."""
    masks = getattr(getattr(codec, "model", None), "masks", None)
    if masks is None:
        return [None]
    from hdc_lightning.models.hybrid.coding import TOKEN, token_grid
    from hdc_lightning.models.lic import pad_image

    gh, gw = token_grid(*image.shape[-2:])
    xp = pad_image(image[None].float(), TOKEN)
    levels = ("full", "auto", "1/4", "1/9", "none")  # on equal shares this order: `none` stays last, the floor
    shares = {m: masks.choose(xp, m).mask(gh, gw).float().mean().item() for m in levels}
    return sorted(levels, key=lambda m: (-shares[m], levels.index(m)))


def _encode(codec: Any, image: Tensor, mask: str | None) -> bytes:
    return codec.encode(image) if mask is None else codec.encode(image, mask=mask)


def _unreachable(target: float, smallest: float, point: str, mask: str | None) -> ConfigError:
    return ConfigError(
        f"--target-bpp {target:g}: below the smallest reachable size, {smallest:.4f} bpp ({point}, mask {mask or '-'})"
    )


def choose(points: Sequence[Point], image: Tensor, target: float, fallback: bool = False) -> Choice:
    """The best-expected-quality file of at most ``target`` bpp (see the module docstring).

    Nothing fits: ConfigError naming the smallest reachable bpp, or with ``fallback`` that
    smallest file (``fits=False``), so an evaluation keeps the same images at every target.
    """
    pixels = image.shape[-2] * image.shape[-1]
    bpp = lambda data: bits_per_pixel(len(data), pixels)  # noqa: E731
    if len(points) == 1:  # no points to rank: walk down the levels, the last one is the floor
        order = mask_order(points[0].codec, image)
        for k, level in enumerate(order, 1):
            data = _encode(points[0].codec, image, level)
            if bpp(data) <= target:
                return Choice(data, points[0].label, 0, level, bpp(data), k, True)
        if not fallback:
            raise _unreachable(target, bpp(data), points[0].label, level)
        return Choice(data, points[0].label, 0, level, bpp(data), len(order), False)
    floors = []  # (bytes of the smallest file, index of the point, its mask order, that file)
    for i, p in enumerate(points):
        order = mask_order(p.codec, image)
        floors.append((order[-1], i, order, _encode(p.codec, image, order[-1])))
    encodes = len(floors)
    fitting = [f for f in floors if bpp(f[3]) <= target]
    if not fitting:
        mask, i, _, data = min(floors, key=lambda f: len(f[3]))
        if not fallback:
            raise _unreachable(target, bpp(data), points[i].label, mask)
        return Choice(data, points[i].label, i, mask, bpp(data), encodes, False)
    mask, i, order, data = max(fitting, key=lambda f: (len(f[3]), -f[1]))  # largest LIC base
    for level in order[:-1]:
        encodes += 1
        candidate = _encode(points[i].codec, image, level)
        if bpp(candidate) <= target:
            mask, data = level, candidate
            break
    return Choice(data, points[i].label, i, mask, bpp(data), encodes, True)


class RateControlled:
    """A codec that encodes every image at ``target`` bpp (``hdc eval --target-bpp``) and decodes
    each file with the point that made it (the header names the weights)."""

    def __init__(self, points: Sequence[Point], target: float, fallback: bool = True):
        self.points, self.target, self.fallback = list(points), target, fallback
        self.by_digest = {p.codec.model_id.digest: p.codec for p in self.points}
        self.choices: list[Choice] = []

    def encode(self, image: Tensor) -> bytes:
        choice = choose(self.points, image, self.target, self.fallback)
        self.choices.append(choice)
        return choice.data

    def decode(self, data: bytes, **options: Any):
        from hdc_lightning.codec.container import unpack

        codec = self.by_digest[unpack(data).header.model_id]
        return codec.decode(data, **options)

    def record(self) -> dict:
        """What the last image's encode chose (one entry: a tiled file's tiles share one choice); read
        once per image."""
        chosen, self.choices = self.choices, []
        missed = sum(not c.fits for c in chosen)
        if missed:
            print(
                f"hdc eval: target {self.target:g} bpp is below the smallest reachable size of "
                "this image; coded at that smallest size",
                file=sys.stderr,
            )
        return {
            "target_bpp": self.target,
            "choice": [f"{c.point}:{c.mask or '-'}" for c in chosen],
            "target_met": not missed,
        }
