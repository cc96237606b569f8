"""Where a reconstruction goes wrong: a border band vs the interior, and low-frequency colour.

Failure modes that PSNR averages away and that generative decoders show on small
training budgets: a striped band along the image edges (a decoder that learned the zero
padding of its training crops as content) and a colour cast (a codebook too coarse to
hold a patch's colour). Both functions take images ``[3,H,W]`` or ``[B,3,H,W]`` in [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

# BT.601 chroma rows (Cb, Cr) of the RGB → YCbCr matrix, for values in [0, 1].
_CHROMA = torch.tensor([[-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])


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
    m = _CHROMA.to(ref.device)
    cref = torch.einsum("cn,bnhw->bchw", m, F.avg_pool2d(ref, block, ceil_mode=True))
    crec = torch.einsum("cn,bnhw->bchw", m, F.avg_pool2d(rec, block, ceil_mode=True))
    return float((cref - crec).abs().mean() * 255)


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
