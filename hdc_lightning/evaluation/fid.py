"""FID and KID on 256-px patches (torchmetrics), usable on small test sets.

A test set like Kodak has 24 images: far too few samples for FID's 2048-d covariance.
As in the HiFiC/MS-ILLM evaluations, each image is cut into non-overlapping 256×256
patches, and a second pass cuts it again shifted by half a patch in both directions;
Kodak then yields 192 patches per codec. Features are extracted once per patch and fed
to torchmetrics' FID and KID (both measure the same Inception features).

torchmetrics' Inception needs the ``torch-fidelity`` package and the weights file
``weights-inception-2015-12-05-6726825d.pth`` (torch-fidelity downloads it to the
torch.hub checkpoint folder; offline machines must place it there or point
``HDC_FID_WEIGHTS`` at it). When either is missing, FID/KID are unavailable.

``kid-vgg16`` is always available: the same patches and the same KID estimator on features of
the VGG16 trunk that ``hdc weights`` installs (the mean of its relu4_3 and relu5_3 maps,
1024-d). It is not the published KID (other network, other features) and its values are not
comparable with papers; it ranks codecs on one test set by how far their patches' feature
distribution is from the originals'.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from pathlib import Path

import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from hdc_lightning.evaluation.metrics import MetricUnavailable, hub_checkpoint, quantize8

PATCH = 256
KID_VGG16 = "kid-vgg16"
INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
KID_MAX_SUBSET = 1000


def patches(image: torch.Tensor, size: int = PATCH, shifted: bool = True) -> torch.Tensor:
    """Non-overlapping size² patches of [3,H,W] (+ the half-shifted grid) → [N,3,size,size]."""
    if image.dim() == 4:
        image = image[0]
    out = []
    for off in (0, size // 2) if shifted else (0,):
        sub = image[:, off:, off:]
        h, w = (sub.shape[-2] // size) * size, (sub.shape[-1] // size) * size
        if h == 0 or w == 0:
            continue
        grid = sub[:, :h, :w].unfold(1, size, size).unfold(2, size, size)  # 3, nh, nw, s, s
        out.append(grid.permute(1, 2, 0, 3, 4).reshape(-1, 3, size, size))
    return torch.cat(out) if out else image.new_zeros((0, 3, size, size))


def inception_weights() -> Path:
    """The Inception weights file, or MetricUnavailable saying what to install/place where."""
    if importlib.util.find_spec("torch_fidelity") is None:
        raise MetricUnavailable(
            "FID/KID need the torch-fidelity package (pip install 'hdc_lightning[fid]' or pip install torch-fidelity)"
        )
    env = os.environ.get("HDC_FID_WEIGHTS")
    path = Path(env) if env else hub_checkpoint(INCEPTION_FILE)
    if not path.is_file():
        raise MetricUnavailable(
            f"FID/KID need the Inception weights {INCEPTION_FILE}: place it at {path} "
            "(or set HDC_FID_WEIGHTS to its path)"
        )
    return path


def inception_extractor() -> nn.Module:
    """torchmetrics' FID Inception (2048-d pool features, uint8 input)."""
    from torchmetrics.image.fid import NoTrainInceptionV3

    path = inception_weights()
    return NoTrainInceptionV3(
        name="inception-v3-compat", features_list=["2048"], feature_extractor_weights_path=str(path)
    )


class VGG16Features(nn.Module):
    """uint8 [N,3,H,W] → [N,1024]: spatial means of VGG16's relu4_3 and relu5_3 (ImageNet-normalised input)."""

    def __init__(self, features: nn.Sequential):
        super().__init__()
        self.to_relu4_3, self.to_relu5_3 = features[:23], features[23:30]
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h4 = self.to_relu4_3((x.float() / 255 - self.mean) / self.std)
        h5 = self.to_relu5_3(h4)
        return torch.cat([h4.mean((2, 3)), h5.mean((2, 3))], dim=1)


def vgg16_extractor() -> nn.Module:
    """:class:`VGG16Features` on the offline trunk (WeightsError with the fix when it is missing)."""
    from torchvision.models import vgg16

    from hdc_lightning.checkpoints import safe_load
    from hdc_lightning.losses.perceptual import _load_exact, resolve_backbone

    path = resolve_backbone("vgg")
    features = vgg16(weights=None).features
    _load_exact(features, {k[len("features.") :]: v for k, v in safe_load(path).items()}, "vgg", path)
    model = VGG16Features(features).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


class _Features(nn.Module):
    """Hands precomputed features to torchmetrics (so each patch goes through Inception once)."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class PatchFID:
    """Accumulate reference/reconstruction patches; ``compute()`` → {"fid", "kid"}.

    ``extractor`` maps uint8 [N,3,256,256] to [N,D] features; default: the Inception of
    :func:`inception_extractor` (raises MetricUnavailable when its weights are absent).
    ``kid_name`` / ``with_fid``: what ``compute()`` reports (``kid-vgg16``: KID only).
    """

    def __init__(
        self,
        extractor: nn.Module | None = None,
        batch: int = 16,
        device: str = "cpu",
        kid_name: str = "kid",
        with_fid: bool = True,
    ):
        self.kid_name, self.with_fid = kid_name, with_fid
        self.device = torch.device(device)
        self.extractor = (extractor if extractor is not None else inception_extractor()).to(self.device).eval()
        self.batch = batch
        self._fid: FrechetInceptionDistance | None = None
        self._kid: KernelInceptionDistance | None = None
        self.n_patches = 0

    @torch.no_grad()
    def _features(self, image: torch.Tensor) -> torch.Tensor:
        p = (quantize8(image)[0] * 255).to(torch.uint8)
        p = patches(p)
        feats = [
            self.extractor(p[i : i + self.batch].to(self.device)).double().cpu() for i in range(0, len(p), self.batch)
        ]
        return torch.cat(feats) if feats else torch.zeros(0, 1, dtype=torch.float64)

    def update(
        self, ref: torch.Tensor, rec: torch.Tensor, key: str | None = None, cache: dict[str, torch.Tensor] | None = None
    ) -> None:
        """Add one image pair; reference features are looked up in ``cache[key]`` when given
        (the same test images are measured for every rate point and codec)."""
        if key is not None and cache is not None:
            if key not in cache:
                cache[key] = self._features(ref)
            real = cache[key]
        else:
            real = self._features(ref)
        fake = self._features(rec)
        if len(real) == 0:
            return
        if self._fid is None:
            dim = real.shape[1]
            self._fid = FrechetInceptionDistance(feature=_Features(dim))
            with warnings.catch_warnings():  # "KID keeps all features": a few hundred patches here
                warnings.simplefilter("ignore", UserWarning)
                self._kid = KernelInceptionDistance(feature=_Features(dim), subset_size=2)
        for metric in (self._fid, self._kid):
            metric.update(real, real=True)
            metric.update(fake, real=False)
        self.n_patches += len(real)

    def compute(self) -> dict[str, float]:
        if self._fid is None or self.n_patches < 2:
            raise MetricUnavailable(f"FID/KID need at least 2 patches of {PATCH} px; got {self.n_patches}")
        self._kid.subset_size = min(KID_MAX_SUBSET, self.n_patches)
        with torch.random.fork_rng():  # KID draws random subsets: same answer on every run
            torch.manual_seed(0)
            kid_mean, _ = self._kid.compute()
        out = {self.kid_name: float(kid_mean)}
        if self.with_fid:
            out["fid"] = float(self._fid.compute())
        return out
