"""Deterministic few-step DRV sampler: posterior-mean reverse diffusion from a seeded start."""

from __future__ import annotations

import math

import torch
from torch import nn

from hdc_lightning.models.drv.denoiser import DRVDenoiser
from hdc_lightning.models.drv.extractor import DRV_NAMES, DRVs, check_names
from hdc_lightning.models.drv.layers import check_image
from hdc_lightning.registry import register


def make_betas(n_steps: int, start: float, end: float, kind: str = "sqrt_linear") -> torch.Tensor:
    """Noise schedule in float64. ``sqrt_linear`` is linear in sqrt(beta) (LDM/DiffIR's "linear")."""
    if n_steps < 1 or not (0 < start <= end < 1):
        raise ValueError(f"need n_steps >= 1 and 0 < beta_start <= beta_end < 1, got {n_steps}, {start}, {end}")
    if kind == "sqrt_linear":
        return torch.linspace(math.sqrt(start), math.sqrt(end), n_steps, dtype=torch.float64, device="cpu") ** 2
    if kind == "linear":
        return torch.linspace(start, end, n_steps, dtype=torch.float64, device="cpu")
    raise ValueError(f"unknown beta schedule '{kind}'; known: sqrt_linear, linear")


def seeded_noise(shape: tuple[int, ...], seed: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Standard normal noise from a private CPU generator: depends on ``seed`` only, never on global RNG."""
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    return torch.randn(shape, generator=gen, dtype=torch.float32).to(device=device, dtype=dtype)


@register(
    "model",
    "drv_sampler",
    presets={
        "tiny": dict(dim=32, cond_ch=16, cond_blocks=1, cond_down=2, t_dim=16, hidden=64, n_layers=3),
        "small": dict(dim=64, cond_ch=32, cond_blocks=1, cond_down=3, t_dim=16, hidden=128, n_layers=3),
        "paper": dict(dim=256, cond_ch=64, cond_blocks=2, cond_down=3, t_dim=32, hidden=1024, n_layers=5),
    },
)
class DRVSampler(nn.Module):
    """Two denoising networks (one per DRV) and the deterministic reverse chain that drives them.

    Decoding (``sample``): start from noise drawn from ``torch.Generator().manual_seed(seed)``,
    then for t = T-1 … 0 predict v̂_0 and step to the posterior mean
    ``coef0[t]·v̂_0 + coef_t[t]·v_t`` without added noise, so the DRVs are a pure function
    of (x̂, seed, weights). Training (``unroll``): as in DiffIR, noise the ground-truth
    vector to the last step with q(v_T | v_0), run the same chain with gradients, and
    match the result to the ground truth (see ``losses.drv.DRVMatchLoss``)::

        seed ─ noise ─ v_T ─ [DN(v_t, t, c(x̂)) → posterior mean] × T ─ v_0   (per DRV)

    Citation: Lu et al., "HDCompression", arXiv 2502.07160 (2025); Xia et al., "DiffIR",
    ICCV 2023 (4 steps, betas 0.1 → 0.99, posterior-mean sampling).
    """

    def __init__(
        self,
        dim: int = 256,
        names=DRV_NAMES,
        n_steps: int = 4,
        beta_start: float = 0.1,
        beta_end: float = 0.99,
        schedule: str = "sqrt_linear",
        cond_ch: int = 64,
        cond_blocks: int = 2,
        cond_down: int = 3,
        t_dim: int = 32,
        hidden: int = 1024,
        n_layers: int = 5,
    ):
        super().__init__()
        self.dim, self.names, self.n_steps = dim, check_names(names), n_steps
        betas = make_betas(n_steps, beta_start, beta_end, schedule)
        alphas = 1 - betas
        abar = torch.cumprod(alphas, 0)
        abar_prev = torch.cat([torch.ones(1, dtype=torch.float64, device="cpu"), abar[:-1]])
        # Coefficients kept as Python floats: identical on every device, never in state_dict.
        self.sqrt_abar_last = math.sqrt(abar[-1].item())
        self.sqrt_1m_abar_last = math.sqrt(1 - abar[-1].item())
        self.coef0 = (betas * abar_prev.sqrt() / (1 - abar)).tolist()
        self.coef_t = ((1 - abar_prev) * alphas.sqrt() / (1 - abar)).tolist()
        self.nets = nn.ModuleDict(
            {
                n: DRVDenoiser(dim, n_steps, None, cond_ch, cond_blocks, cond_down, t_dim, hidden, n_layers)
                for n in self.names
            }
        )

    def _reverse(self, net: DRVDenoiser, v: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        for t in reversed(range(self.n_steps)):
            tt = torch.full((v.shape[0],), t, dtype=torch.long, device=v.device)
            v0 = net(v, tt, cond)
            v = v0 if t == 0 else self.coef0[t] * v0 + self.coef_t[t] * v
        return v

    def sample(self, x_hat: torch.Tensor, seed: int = 0) -> DRVs:
        """Decode-time DRVs: deterministic given (x̂, seed); the global RNG is never touched."""
        check_image(x_hat, 4, "x_hat")
        b = x_hat.shape[0]
        # One start vector per DRV, drawn in a fixed order from the one seeded generator.
        noise = seeded_noise((len(self.names), b, self.dim), seed, x_hat.device, x_hat.dtype)
        out = {}
        for i, n in enumerate(self.names):
            out[f"v_{n}"] = self._reverse(self.nets[n], noise[i], self.nets[n].condition(x_hat))
        return DRVs(**out)

    def unroll(self, x_hat: torch.Tensor, target: DRVs, generator: torch.Generator | None = None) -> DRVs:
        """Training: q-sample each ground-truth DRV to the last step, run the full chain, return v̂_0."""
        check_image(x_hat, 4, "x_hat")
        out = {}
        for n in self.names:
            v_gt = target.get(n)
            if v_gt is None:
                raise ValueError(f"unroll needs the ground-truth v_{n}")
            device = generator.device if generator is not None else v_gt.device
            eps = torch.randn(v_gt.shape, generator=generator, device=device).to(v_gt)
            v_T = self.sqrt_abar_last * v_gt.detach() + self.sqrt_1m_abar_last * eps
            out[f"v_{n}"] = self._reverse(self.nets[n], v_T, self.nets[n].condition(x_hat))
        return DRVs(**out)

    def forward(self, x_hat: torch.Tensor, target: DRVs | None = None, seed: int = 0) -> DRVs:
        """``unroll`` when a ground-truth target is given (training), else ``sample``."""
        return self.sample(x_hat, seed) if target is None else self.unroll(x_hat, target)
