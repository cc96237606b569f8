"""LPIPS (Zhang et al., CVPR 2018) through the ``lpips`` package, usable offline.

The package ships its small linear heads, but its backbone (torchvision AlexNet/VGG/
SqueezeNet ImageNet weights) would be downloaded on first use. We never download: the
backbone is built randomly initialised and then loaded from a local file, found at
(first match wins)

1. the ``backbone_path`` argument (phase config ``phase.lpips_backbone``),
2. the environment variable ``HDC_LPIPS_BACKBONE``,
3. torch hub's cache, ``torch.hub.get_dir()/checkpoints/<torchvision file name>``
   (e.g. ``~/.cache/torch/hub/checkpoints/alexnet-owt-7be5be79.pth``).

When none exists we raise one clear :class:`CheckpointError`. The network is frozen, in
eval mode, computes in float32 (its feature normalisation divides by a norm that
underflows in fp16), and is deliberately *not* a registered submodule of
:class:`PerceptualLoss`, so it never enters a state_dict or a checkpoint.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
from torch import nn

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
    path = hub_backbone_path(net)
    if not path.is_file():
        raise CheckpointError(
            f"LPIPS needs torchvision's '{net}' weights: place {BACKBONE_FILES[net]} at {path} "
            f"(or point {ENV_VAR} / phase.lpips_backbone to it), or train without LPIPS: phase.perceptual_weight=0"
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
                mapped[dst + key[len(src):]] = value
    expected = set(model.net.state_dict())
    if set(mapped) != expected:
        raise CheckpointError(f"{path}: not torchvision '{net}' weights (feature layers do not match)")
    try:
        model.net.load_state_dict(mapped, strict=True)
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

    def forward(self, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        net = self._lpips
        if next(net.parameters()).device != x.device:
            net.to(x.device)
        with torch.autocast(device_type=x.device.type, enabled=False):
            d = net(x_hat.float() * 2 - 1, x.float() * 2 - 1)
        return d.mean()
