"""Masked index transmission: which VQ token positions are sent, and how that is signalled.

Levels (one code per region, 2 bits): ``none`` (0, nothing sent), ``1/9`` (1, every 3rd
row and column), ``1/4`` (2, every 2nd row and column), ``full`` (3). The sub-grids are
laid on *global* token coordinates (row % s == (s-1)//2, same for columns), so a region
of any size and position gets its share and a uniform schedule is exactly the classic
1-in-4 / 1-in-9 grid. A complexity-aware schedule splits the token grid into
``region``×``region`` blocks (the last row/column of blocks may be partial) and gives
busier blocks denser levels; the encoder chooses it, the stream carries it, and the
decoder rebuilds the identical boolean mask from the bytes alone.

Serialised schedule::

    uniform:    1 byte   0x10 | level
    per region: 0x20, region (1 byte, 1..255), ceil(n/4) bytes of 2-bit levels, row-major,
                most significant bits first, padding bits zero (n = regions on the token grid)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hdc_lightning.errors import BitstreamError, ConfigError
from hdc_lightning.registry import register

LEVELS = {"none": 0, "1/9": 1, "1/4": 2, "full": 3}
LEVEL_NAMES = {v: k for k, v in LEVELS.items()}
_STRIDE = {0: 0, 1: 3, 2: 2, 3: 1}
MODES = ("full", "1/4", "1/9", "none", "auto")
_TAG_UNIFORM, _TAG_REGIONS = 0x10, 0x20


def level_code(level: str | int) -> int:
    if isinstance(level, int) and level in LEVEL_NAMES:
        return level
    if level in LEVELS:
        return LEVELS[level]
    raise ConfigError(f"unknown mask level '{level}'; known: {', '.join(LEVELS)}")


def grid_mask(h: int, w: int, level: str | int, device=None) -> torch.Tensor:
    """Bool [h, w]: the positions a uniform ``level`` sends."""
    s = _STRIDE[level_code(level)]
    if s == 0:
        return torch.zeros(h, w, dtype=torch.bool, device=device)
    rows = torch.arange(h, device=device) % s == (s - 1) // 2
    cols = torch.arange(w, device=device) % s == (s - 1) // 2
    return rows[:, None] & cols[None, :]


def region_grid(h: int, w: int, region: int) -> tuple[int, int]:
    return math.ceil(h / region), math.ceil(w / region)


def _mask_from_levels(levels: torch.Tensor, h: int, w: int, region: int) -> torch.Tensor:
    """levels [..., rh, rw] (codes) → bool [..., h, w]: each cell takes its region's sub-grid."""
    stack = torch.stack([grid_mask(h, w, c, levels.device) for c in range(4)])  # [4, h, w]
    cell = levels.repeat_interleave(region, -2).repeat_interleave(region, -1)[..., :h, :w].long()
    ii = torch.arange(h, device=levels.device)[:, None]
    jj = torch.arange(w, device=levels.device)[None, :]
    return stack[cell, ii, jj]


@dataclass(frozen=True)
class MaskSchedule:
    """Which positions are sent: one level for the grid (``region == 0``) or one per region."""

    region: int
    codes: tuple[int, ...]

    def levels(self) -> list[str]:
        return [LEVEL_NAMES[c] for c in self.codes]

    def mask(self, h: int, w: int, device=None) -> torch.Tensor:
        """Bool sent-mask [h, w] for an h×w token grid; identical wherever it is computed."""
        if self.region == 0:
            return grid_mask(h, w, self.codes[0], device)
        rh, rw = region_grid(h, w, self.region)
        if len(self.codes) != rh * rw:
            raise ValueError(f"schedule has {len(self.codes)} regions, a {h}x{w} grid needs {rh * rw}")
        levels = torch.tensor(self.codes, dtype=torch.long, device=device).view(rh, rw)
        return _mask_from_levels(levels, h, w, self.region)

    def to_bytes(self) -> bytes:
        if self.region == 0:
            return bytes([_TAG_UNIFORM | self.codes[0]])
        packed = bytearray(math.ceil(len(self.codes) / 4))
        for i, c in enumerate(self.codes):
            packed[i // 4] |= c << (6 - 2 * (i % 4))
        return bytes([_TAG_REGIONS, self.region]) + bytes(packed)

    @classmethod
    def from_bytes(cls, data: bytes, grid: tuple[int, int]) -> MaskSchedule:
        """Parse and validate; anything malformed raises a one-line BitstreamError."""
        data = bytes(data)
        if not data:
            raise BitstreamError("mask schedule: empty")
        tag = data[0]
        if tag & 0xF0 == _TAG_UNIFORM and tag & 0x0C == 0:
            if len(data) != 1:
                raise BitstreamError(f"mask schedule: uniform schedule is 1 byte, got {len(data)}")
            return cls(0, (tag & 0x03,))
        if tag != _TAG_REGIONS:
            raise BitstreamError(f"mask schedule: unknown tag 0x{tag:02x}")
        if len(data) < 2 or data[1] == 0:
            raise BitstreamError("mask schedule: missing or zero region size")
        region = data[1]
        rh, rw = region_grid(grid[0], grid[1], region)
        n = rh * rw
        if len(data) != 2 + math.ceil(n / 4):
            raise BitstreamError(f"mask schedule: {n} regions need {2 + math.ceil(n / 4)} bytes, got {len(data)}")
        codes = tuple((data[2 + i // 4] >> (6 - 2 * (i % 4))) & 3 for i in range(n))
        tail_bits = (4 - n % 4) % 4
        if tail_bits and data[-1] & ((1 << (2 * tail_bits)) - 1):
            raise BitstreamError("mask schedule: nonzero padding bits")
        return cls(region, codes)


def uniform_schedule(level: str | int) -> MaskSchedule:
    return MaskSchedule(0, (level_code(level),))


def complexity_scores(image: torch.Tensor, region: int, token: int = 16) -> torch.Tensor:
    """Mean luma gradient energy per region of ``region``×``region`` tokens, float64 [rh, rw]."""
    if image.dim() == 4:
        if image.shape[0] != 1:
            raise ValueError(f"complexity_scores takes one image, got a batch of {image.shape[0]}")
        image = image[0]
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"image must be [3, H, W] or [1, 3, H, W], got {tuple(image.shape)}")
    x = image.detach().to("cpu", torch.float64)
    y = 0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]
    energy = torch.zeros_like(y)
    energy[:, :-1] += (y[:, 1:] - y[:, :-1]) ** 2
    energy[:-1, :] += (y[1:, :] - y[:-1, :]) ** 2
    p = region * token
    hp, wp = math.ceil(y.shape[0] / p) * p, math.ceil(y.shape[1] / p) * p
    pad = (0, wp - y.shape[1], 0, hp - y.shape[0])
    sums = F.pad(energy, pad).view(hp // p, p, wp // p, p).sum((1, 3))
    counts = F.pad(torch.ones_like(y), pad).view(hp // p, p, wp // p, p).sum((1, 3))
    return sums / counts


def levels_by_quantile(scores: torch.Tensor, levels: tuple[int, ...], fractions: tuple[float, ...]) -> list[int]:
    """The calmest ``fractions[0]`` of regions get ``levels[0]``, … (stable: ties by raster order)."""
    flat = scores.flatten()
    order = torch.sort(flat, stable=True).indices.tolist()
    n, cum, bounds = flat.numel(), 0.0, []
    for f in fractions:
        cum += f
        bounds.append(math.floor(cum * n + 0.5))
    codes = [0] * n
    k = 0
    for rank, idx in enumerate(order):
        while k < len(bounds) - 1 and rank >= bounds[k]:
            k += 1
        codes[idx] = levels[k]
    return codes


@register(
    "model",
    "masks",
    presets={"tiny": dict(region=2), "small": dict(region=4), "paper": dict(region=4)},
)
class MaskPolicy(nn.Module):
    """Chooses a mask schedule at the encoder, and draws training masks of the same family.

    ``mode``: ``auto`` (complexity-aware per region), or a uniform ``full``/``1/4``/``1/9``/
    ``none``. ``auto`` ranks regions by luma gradient energy and assigns ``levels`` by
    quantile ``fractions`` (a fixed average rate), or by absolute ``thresholds`` on the
    score when given (rate follows content). No parameters, so it never changes a
    checkpoint. Citation: HybridFlow (ACM MM 2024) complexity-aware masking.
    """

    def __init__(
        self,
        mode: str = "auto",
        region: int = 4,
        levels=("1/9", "1/4", "full"),
        fractions=(0.5, 0.3, 0.2),
        thresholds=None,
        token: int = 16,
        train_uniform_prob: float = 0.5,
    ):
        super().__init__()
        if mode not in MODES:
            raise ConfigError(f"masks.mode '{mode}' is unknown; known: {', '.join(MODES)}")
        if not 1 <= region <= 255:
            raise ConfigError(f"masks.region must be in 1..255 tokens, got {region}")
        self.levels = tuple(level_code(lv) for lv in levels)
        if thresholds is not None:
            thresholds = tuple(float(t) for t in thresholds)
            if len(thresholds) != len(self.levels) - 1 or list(thresholds) != sorted(thresholds):
                n = len(self.levels) - 1
                raise ConfigError(f"masks.thresholds must be {n} increasing numbers, got {thresholds}")
        fractions = tuple(float(f) for f in fractions)
        if len(fractions) != len(self.levels) or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6:
            n = len(self.levels)
            raise ConfigError(f"masks.fractions must be {n} non-negative numbers summing to 1, got {fractions}")
        self.mode, self.region, self.fractions, self.thresholds = mode, region, fractions, thresholds
        self.token, self.train_uniform_prob = token, train_uniform_prob

    def choose(self, image: torch.Tensor, mode: str | None = None) -> MaskSchedule:
        """Encoder side: the schedule for one image ([1, 3, H, W] x or x̂, H, W multiples of 16)."""
        mode = mode or self.mode
        if mode not in MODES:
            raise ConfigError(f"mask mode '{mode}' is unknown; known: {', '.join(MODES)}")
        if mode != "auto":
            return uniform_schedule(mode)
        scores = complexity_scores(image, self.region, self.token)
        if self.thresholds is None:
            return MaskSchedule(self.region, tuple(levels_by_quantile(scores, self.levels, self.fractions)))
        k = torch.bucketize(scores.flatten(), torch.tensor(self.thresholds, dtype=torch.float64), right=True)
        return MaskSchedule(self.region, tuple(self.levels[i] for i in k.tolist()))

    def forward(self, image: torch.Tensor, mode: str | None = None) -> MaskSchedule:
        return self.choose(image, mode)

    def training_masks(
        self, b: int, h: int, w: int, generator: torch.Generator | None = None, device=None, reveal_max: float = 0.0
    ) -> torch.Tensor:
        """Bool [B, h, w] sent-masks for training T: per sample either one level for the whole
        grid (prob ``train_uniform_prob``) or random per-region levels, levels drawn with
        probabilities ``fractions`` — the masks the decoder will meet. ``reveal_max`` > 0 also
        reveals a random share (uniform in [0, reveal_max]) of the other positions, the
        irregular states that multi-step refinement (``IndexPredictor.decode(steps>1)``) meets."""
        rh, rw = region_grid(h, w, self.region)
        weights = torch.tensor(self.fractions, dtype=torch.float64)
        pick = torch.multinomial(weights, b * (rh * rw + 1), replacement=True, generator=generator).view(b, -1)
        codes = torch.tensor(self.levels)[pick]  # [B, rh*rw + 1]
        uni = torch.rand(b, generator=generator) < self.train_uniform_prob
        per_region = torch.where(uni[:, None], codes[:, :1], codes[:, 1:]).view(b, rh, rw)
        mask = _mask_from_levels(per_region, h, w, self.region)
        if reveal_max > 0:
            share = torch.rand(b, 1, 1, generator=generator) * reveal_max
            mask = mask | (torch.rand(b, h, w, generator=generator) < share)
        return mask.to(device)
