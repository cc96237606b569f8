"""Does a realism axis order what it should? Patch KID of graded distortions of real images.

A realism measure compares the distribution of outputs with that of natural images. Before it
ranks codecs it should rank the obvious: the originals best, and blurred, JPEG-compressed and
noised copies of the same images worse the stronger the distortion. :func:`distortion_ladder`
scores every level of each ladder with the same patch protocol as ``hdc eval`` (fid.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torchvision.transforms.functional import gaussian_blur

from hdc_lightning.evaluation.classical import decode, encode, get, to_pil
from hdc_lightning.evaluation.fid import KID_VGG16, PatchFID
from hdc_lightning.evaluation.metrics import quantize8


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    k = 2 * int(3 * sigma) + 1
    return gaussian_blur(x[None], [k, k], [sigma, sigma])[0]


def jpeg(x: torch.Tensor, quality: float) -> torch.Tensor:
    return decode(encode(get("jpeg"), to_pil(x), int(quality)))


def noise(x: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (x + sigma * torch.randn(x.shape, generator=g)).clamp(0, 1)


# name → (distortion, levels from weak to strong)
LADDERS: dict[str, tuple[Callable[[torch.Tensor, float], torch.Tensor], tuple[float, ...]]] = {
    "blur": (blur, (1.0, 2.0, 4.0)),
    "jpeg": (jpeg, (50, 20, 5)),
    "noise": (noise, (0.02, 0.05, 0.1)),
}


def distortion_ladder(
    images: Sequence[torch.Tensor],
    extractor: torch.nn.Module,
    ladders: dict = LADDERS,
    kid_name: str = KID_VGG16,
    device: str = "cpu",
) -> dict[str, list[float]]:
    """{"original": [kid], ladder: [kid per level, weak → strong]} against the originals."""
    with_fid = kid_name == "kid"
    cache: dict = {}

    def score(fn) -> float:
        acc = PatchFID(extractor, device=device, kid_name=kid_name, with_fid=with_fid)
        for i, x in enumerate(images):
            acc.update(x, quantize8(fn(x)), key=str(i), cache=cache)
        return acc.compute()[kid_name]

    out = {"original": [score(lambda x: x)]}
    for name, (fn, levels) in ladders.items():
        out[name] = [score(lambda x, fn=fn, v=v: fn(x, v)) for v in levels]
    return out


def ordered(result: dict[str, list[float]]) -> dict[str, bool]:
    """Per ladder: the originals score below its weakest level and its levels rise with strength."""
    base = result["original"][0]
    return {
        name: all(a < b for a, b in zip([base, *kids], kids)) for name, kids in result.items() if name != "original"
    }
