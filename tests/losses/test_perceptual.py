"""LPIPS loader: clear error without the backbone file, local-file loading, float32, not in state_dict."""

import pytest
import torch
import torchvision

from hdc_lightning import weights
from hdc_lightning.errors import HDCError
from hdc_lightning.losses import perceptual
from hdc_lightning.losses.perceptual import PerceptualLoss, load_lpips


@pytest.fixture()
def empty_hub(tmp_path, monkeypatch):
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    monkeypatch.delenv(perceptual.ENV_VAR, raising=False)
    monkeypatch.setenv(weights.ENV_DIR, str(tmp_path / "no-trunks"))  # `hdc weights` output not there
    yield tmp_path / "hub"
    torch.hub.set_dir(old)


def test_missing_backbone_names_the_file_the_fix_and_the_switch(empty_hub):
    with pytest.raises(HDCError) as err:
        load_lpips("alex")
    msg = str(err.value)
    assert "\n" not in msg
    assert str(weights.weights_dir() / "alexnet-trunk.pt") in msg and "hdc weights" in msg
    assert perceptual.ENV_VAR in msg and "phase.perceptual_weight=0" in msg
    with pytest.raises(HDCError) as err:  # squeeze: no converted trunk, torch hub's file named
        load_lpips("squeeze")
    assert str(empty_hub / "checkpoints" / "squeezenet1_1-b8a52dc0.pth") in str(err.value)


def test_env_var_pointing_nowhere_is_reported(empty_hub, monkeypatch):
    monkeypatch.setenv(perceptual.ENV_VAR, str(empty_hub / "nope.pth"))
    with pytest.raises(HDCError, match="HDC_LPIPS_BACKBONE=.*not found"):
        load_lpips("alex")


def test_backbone_is_loaded_from_a_local_file(empty_hub, monkeypatch):
    state = torchvision.models.alexnet(weights=None).state_dict()
    path = empty_hub / "alex.pth"
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    monkeypatch.setenv(perceptual.ENV_VAR, str(path))
    net = load_lpips("alex")
    assert torch.equal(net.net.slice1[0].weight, state["features.0.weight"])
    assert torch.equal(getattr(net.net.slice5, "10").weight, state["features.10.weight"])
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    # The same file found in torch hub's cache works without the env var.
    monkeypatch.delenv(perceptual.ENV_VAR)
    (empty_hub / "checkpoints").mkdir()
    path.rename(empty_hub / "checkpoints" / "alexnet-owt-7be5be79.pth")
    assert torch.equal(load_lpips("alex").net.slice1[0].weight, state["features.0.weight"])


def test_a_wrong_file_is_rejected(empty_hub, monkeypatch):
    path = empty_hub / "vgg_as_alex.pth"
    path.parent.mkdir(parents=True)
    torch.save({"features.0.weight": torch.zeros(3)}, path)
    with pytest.raises(HDCError, match="not torchvision 'alex' weights"):
        load_lpips("alex", backbone_path=str(path))


def test_perceptual_loss_has_no_state_and_stays_float32_under_bf16():
    loss = PerceptualLoss(random_backbone=True)
    assert loss.state_dict() == {} and list(loss.parameters()) == []
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    y = torch.rand(2, 3, 32, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        d = loss(x.to(torch.bfloat16), y.to(torch.bfloat16))
    assert d.dtype == torch.float32 and torch.isfinite(d)
    d.backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert float(loss(y, y)) == pytest.approx(0.0, abs=1e-6)
