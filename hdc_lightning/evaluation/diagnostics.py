"""Where a reconstruction goes wrong: a border band vs the interior, and low-frequency colour.

Failure modes that PSNR averages away and that generative decoders show on small
training budgets: a striped band along the image edges (a decoder that learned the zero
padding of its training crops as content) and a colour cast (a codebook too coarse to
hold a patch's colour). Both functions take images ``[3,H,W]`` or ``[B,3,H,W]`` in [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from hdc_lightning.colour import block_chroma


def _batch(x: torch.Tensor) -> torch.Tensor:
    x = x.detach().float()
    return x.unsqueeze(0) if x.dim() == 3 else x


def border_errors(ref: torch.Tensor, rec: torch.Tensor, band: int = 32) -> tuple[float, float]:
    """Mean absolute error (×255) in the ``band``-pixel frame along the edges and inside it."""
    ref, rec = _batch(ref), _batch(rec)
    h, w = ref.shape[-2:]
    if 2 * band >= min(h, w):
        raise ValueError(f"a {band}-px band leaves no interior in a {h}x{w} image")
    err = (ref - rec).abs().mean(dim=1) * 255  # [B, H, W]
    inner = torch.zeros(h, w, dtype=torch.bool)
    inner[band:-band, band:-band] = True
    return float(err[:, ~inner].mean()), float(err[:, inner].mean())


def border_ratio(ref: torch.Tensor, rec: torch.Tensor, band: int = 32) -> float:
    """Border-band error over interior error: ≈1 for a decoder without an edge artefact."""
    edge, inside = border_errors(ref, rec, band)
    return edge / max(inside, 1e-6)


def chroma_error(ref: torch.Tensor, rec: torch.Tensor, block: int = 16) -> float:
    """Mean absolute Cb/Cr difference (×255) of ``block``-pixel averages: the colour cast."""
    ref, rec = _batch(ref), _batch(rec)
    return float((block_chroma(ref, block) - block_chroma(rec, block)).abs().mean() * 255)


def frame_effect(
    reconstruct: Callable[[torch.Tensor], torch.Tensor],
    image: torch.Tensor,
    margin: int = 32,
    band: int = 16,
    whole: torch.Tensor | None = None,
) -> float:
    """How much worse the frame of a picture comes out because it *is* the frame.

    ``image[margin:-margin]`` is reconstructed alone and inside the whole ``image``; the
    result is the error in its ``band``-pixel frame alone over the error of the same pixels
    with real context around them. Content is identical in both, so a ratio ≈ 1 says the
    codec has no edge artefact (padding, normalisation, how the caller pads) and a border
    band of :func:`border_ratio` comes from what is near the edges; > 1 is an artefact.
    ``reconstruct`` maps ``[B,3,H,W]`` to ``[B,3,H,W]``; both sizes must suit it. ``whole``:
    the caller's reconstruction of all of ``image``, if it has one (saves coding it again).
    """
    x = _batch(image)
    crop = x[..., margin:-margin, margin:-margin]
    alone = reconstruct(crop).detach().float().clamp(0, 1)
    whole = reconstruct(x) if whole is None else _batch(whole)
    inside = whole.detach().float().clamp(0, 1)[..., margin:-margin, margin:-margin]
    edge_alone, _ = border_errors(crop, alone, band)
    edge_inside, _ = border_errors(crop, inside, band)
    return edge_alone / max(edge_inside, 1e-6)


def probe_r2(features: torch.Tensor, targets: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """How much of ``targets`` ``[N,T]`` a linear map of ``features`` ``[N,D]`` explains: R² per
    target column on a held-out quarter (least squares with a bias on the other three quarters).

    On a VQ model's lookup vectors against each token's mean Y, Cb, Cr it says whether the
    latent carries colour at all: if not, no decoder can restore it.
    """
    n = features.shape[0]
    if n < 8:
        raise ValueError(f"probe_r2 needs at least 8 samples, got {n}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    train, test = order[: n * 3 // 4], order[n * 3 // 4 :]
    a = torch.cat([features.double(), features.new_ones(n, 1).double()], 1)
    y = targets.double()
    w = torch.linalg.lstsq(a[train], y[train]).solution
    residual = ((a[test] @ w - y[test]) ** 2).sum(0)
    spread = ((y[test] - y[test].mean(0)) ** 2).sum(0).clamp_min(1e-12)
    return (1 - residual / spread).float()
