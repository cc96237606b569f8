"""The non-convolution arithmetic of MLIC++'s entropy side, in float (training) or exact fixed point.

MLIC++ conditions its Gaussians on softmax attention, layer norms, GELUs and a ``0.5·tanh``
residual prediction, none of which a float kernel computes alike on every CPU. Its context
modules call these operations through ``self.ops``: :data:`FLOAT` while training, an
:class:`ExactOps` on the fixed-point copy that ``compress``/``decompress`` build
(:func:`exact_copy`). The exact rules extend :mod:`hdc_lightning.models.lic.exact`:

- activations on the grid ``2**-12`` (clamped to ±2048); convs and linear layers with
  integer weights, so their sums are exact in float64 (see that module);
- GELU, ``0.5·tanh`` and ``exp`` read integer tables (:func:`build_tables`) that are stored
  with the weights, like the CDF tables, so no machine evaluates a transcendental function;
- softmax: ``exp`` of (x − max) from the table on the grid ``2**-24``, an exact integer
  sum, one IEEE division per element, rounded to ``2**-24``;
- products of a probability (≤ 1, grid ``2**-24``) with an activation, or of two
  activations over at most 64 terms, stay below ``2**52`` grid units: exact in float64;
- layer norm: an int64 mean and variance, then IEEE ``sqrt``/``÷``/``×``, rounded.

Every step is exact or a single correctly rounded IEEE operation, so any machine gets the
same bits.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hdc_lightning.models.lic.buffers import FIXED_POINT_TABLES
from hdc_lightning.models.lic.exact import ACT_BITS, FixedPointConv, integer_weights, to_grid

PROB_BITS = 24  # softmax outputs and the exp table on a grid of 2**-24
TABLE_RANGE = 8  # GELU and 0.5·tanh are tabulated on [-8, 8): beyond it they are x / 0 and ±0.5 on the grid
EXP_RANGE = 24  # exp(-24) < 2**-25: rounds to 0 on the probability grid
MASKED = -100.0  # MLIC++'s additive attention mask
TABLE_NAMES = tuple(k.removesuffix("_table") for k in FIXED_POINT_TABLES)  # stored as buffers NAME_table


def _prob_grid(x: Tensor) -> Tensor:
    scale = 2.0**PROB_BITS
    return torch.floor(x * scale + 0.5) / scale


def build_tables() -> dict[str, Tensor]:
    """The integer tables of the exact path (grid units), from float64 functions.

    Built once (``update()``) and stored: a rebuild elsewhere could round an entry that lies
    on a tie the other way.
    """
    units = 2.0**ACT_BITS
    x = torch.arange(-TABLE_RANGE * 2**ACT_BITS, TABLE_RANGE * 2**ACT_BITS, dtype=torch.float64) / units
    gelu = torch.floor(F.gelu(x) * units + 0.5)
    tanh = torch.floor(0.5 * torch.tanh(x) * units + 0.5)
    d = -torch.arange(0, EXP_RANGE * 2**ACT_BITS + 1, dtype=torch.float64) / units
    exp = torch.floor(torch.exp(d) * 2.0**PROB_BITS + 0.5)
    return {"gelu": gelu.to(torch.int32), "tanh": tanh.to(torch.int32), "exp": exp.to(torch.int32)}


class FloatOps:
    """The training path: MLIC++'s own float operations."""

    exact = False

    def gelu(self, x: Tensor) -> Tensor:
        return F.gelu(x)

    def tanh_half(self, x: Tensor) -> Tensor:
        return 0.5 * torch.tanh(x)

    def softmax(self, x: Tensor, dim: int) -> Tensor:
        return F.softmax(x, dim=dim)

    def matmul(self, a: Tensor, b: Tensor) -> Tensor:
        return a @ b

    def scale(self, x: Tensor, s: float) -> Tensor:
        return x * s

    def bias(self, x: Tensor) -> Tensor:
        return x


FLOAT = FloatOps()


class ExactOps:
    """The coding path: every result on a grid, from exact sums, tables and single IEEE operations."""

    exact = True

    def __init__(self, tables: dict[str, Tensor]):
        self.gelu_t = tables["gelu"].to(torch.float64) / 2.0**ACT_BITS
        self.tanh_t = tables["tanh"].to(torch.float64) / 2.0**ACT_BITS
        self.exp_t = tables["exp"].to(torch.float64) / 2.0**PROB_BITS

    @staticmethod
    def _index(x: Tensor) -> Tensor:
        return (x * 2.0**ACT_BITS).long() + TABLE_RANGE * 2**ACT_BITS

    def gelu(self, x: Tensor) -> Tensor:
        x = to_grid(x)
        inside = x.abs() < TABLE_RANGE
        looked = self.gelu_t[self._index(torch.where(inside, x, torch.zeros_like(x)))]
        return torch.where(inside, looked, x.clamp(min=0))

    def tanh_half(self, x: Tensor) -> Tensor:
        x = to_grid(x)
        inside = x.abs() < TABLE_RANGE
        looked = self.tanh_t[self._index(torch.where(inside, x, torch.zeros_like(x)))]
        return torch.where(inside, looked, 0.5 * torch.sign(x))

    def softmax(self, x: Tensor, dim: int) -> Tensor:
        x = to_grid(x)
        k = ((x.amax(dim, keepdim=True) - x) * 2.0**ACT_BITS).long()  # ≥ 0, exact
        e = torch.where(k <= EXP_RANGE * 2**ACT_BITS, self.exp_t[k.clamp(max=EXP_RANGE * 2**ACT_BITS)], 0.0)
        total = e.sum(dim, keepdim=True)  # integer multiples of 2**-24 below 2**52: exact
        return _prob_grid(e / total.expand_as(e))

    def matmul(self, a: Tensor, b: Tensor) -> Tensor:
        return to_grid(a @ b)

    def scale(self, x: Tensor, s: float) -> Tensor:
        return to_grid(x * s)

    def bias(self, x: Tensor) -> Tensor:
        return to_grid(x)


class FixedPointLinear(nn.Module):
    """An ``nn.Linear`` with integer weights (the rules of :class:`FixedPointConv`)."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        w_int, shift = integer_weights(linear.weight[:, :, None, None])
        self.register_buffer("weight", w_int[:, :, 0, 0] / 2.0**shift)
        units = 2.0 ** (ACT_BITS + shift)
        b = torch.zeros(linear.out_features, dtype=torch.float64) if linear.bias is None else linear.bias.detach()
        self.register_buffer("bias", torch.round(b.to(torch.float64) * units) / units)

    def forward(self, x: Tensor) -> Tensor:
        return to_grid(F.linear(to_grid(x.to(torch.float64)), self.weight, self.bias))


class ExactLayerNorm(nn.Module):
    """Layer norm over the last dim: int64 mean and variance, then single IEEE operations."""

    def __init__(self, norm: nn.LayerNorm):
        super().__init__()
        self.eps = float(norm.eps)
        self.register_buffer("weight", norm.weight.detach().to(torch.float64))
        self.register_buffer("bias", norm.bias.detach().to(torch.float64))

    def forward(self, x: Tensor) -> Tensor:
        units = 2**ACT_BITS
        xi = (to_grid(x.to(torch.float64)) * units).long()
        n = xi.shape[-1]
        total = xi.sum(-1, keepdim=True)
        mean = torch.floor(total.double() / float(n) + 0.5).long()  # rounded to the grid
        d = xi - mean  # |d| ≤ 2**24, so Σd² < 2**63 for up to 2**14 channels
        var = (d * d).sum(-1, keepdim=True).double() / float(n * units * units)
        inv = 1.0 / torch.sqrt(var + self.eps)
        return to_grid(d.double() / units * inv * self.weight + self.bias)


class TableGELU(nn.Module):
    def __init__(self, ops: ExactOps):
        super().__init__()
        self.ops = ops

    def forward(self, x: Tensor) -> Tensor:
        return self.ops.gelu(x)


@torch.no_grad()
def exact_copy(module: nn.Module, tables: dict[str, Tensor]) -> nn.Module:
    """A CPU float64 copy of ``module`` in exact arithmetic: convs, linears, norms and GELUs
    replaced, and every submodule's ``ops`` set to one :class:`ExactOps`."""
    ops = ExactOps(tables)
    out = copy.deepcopy(module).to(device="cpu", dtype=torch.float64).eval()
    for parent in list(out.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, (nn.Conv2d, nn.ConvTranspose2d)):
                setattr(parent, name, FixedPointConv(child))
            elif isinstance(child, nn.Linear):
                setattr(parent, name, FixedPointLinear(child))
            elif isinstance(child, nn.LayerNorm):
                setattr(parent, name, ExactLayerNorm(child))
            elif isinstance(child, nn.GELU):
                setattr(parent, name, TableGELU(ops))
    for m in out.modules():
        if hasattr(m, "ops"):
            m.ops = ops
    return out
