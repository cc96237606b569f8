"""Losses are registry modules built from a phase's config: keyword-only, defaults in the config only."""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import pytest

from hdc_lightning import registry
from hdc_lightning.errors import ConfigError, RegistryError
from hdc_lightning.models.contracts import HybridModel, LICStream, VQStream, check_contract
from hdc_lightning.phases.drv import DRVConfig
from hdc_lightning.phases.fusion import FusionConfig
from hdc_lightning.phases.lic import LICConfig
from hdc_lightning.phases.vq import VQConfig

# loss → (the config it is built from, the prefix of its fields there)
BUILT_FROM = {
    "rate_distortion": (LICConfig, ""),
    "vqgan": (VQConfig, ""),
    "drv_match": (DRVConfig, "match_"),
    "fusion": (FusionConfig, ""),
}
NOT_FROM_A_PHASE = {"lpips", "conditional_gan"}  # parts of other losses, built by them


def test_every_loss_is_built_from_a_phase_config_or_is_a_part():
    assert set(registry.names("loss")) == set(BUILT_FROM) | NOT_FROM_A_PHASE


@pytest.mark.parametrize("name", sorted(BUILT_FROM))
def test_loss_arguments_are_keyword_only_without_defaults(name):
    params = list(inspect.signature(registry.get("loss", name).factory.__init__).parameters.values())[1:]
    assert params and all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params)
    assert all(p.default is inspect.Parameter.empty for p in params), "a default belongs in the config"


@pytest.mark.parametrize("name", sorted(BUILT_FROM))
def test_the_phase_config_holds_every_argument(name):
    config, prefix = BUILT_FROM[name]
    fields = config.__dataclass_fields__
    cfg = config(**({"perceptual_weight": 0.0} if "perceptual_weight" in fields else {}))  # no LPIPS trunk needed
    loss = registry.build_from("loss", name, cfg, where="phase", prefix=prefix)
    assert loss.training is True


def test_a_config_without_an_argument_is_named():
    @dataclass
    class Partial:
        lmbda: float = 0.01

    with pytest.raises(RegistryError, match=r"phase: loss 'rate_distortion' needs distortion"):
        registry.build_from("loss", "rate_distortion", Partial(), where="phase")


def test_bad_values_are_config_errors():
    with pytest.raises(ConfigError, match=r"phase\.distortion: 'l1'"):
        registry.build_from("loss", "rate_distortion", LICConfig(distortion="l1"), where="phase")
    with pytest.raises(ConfigError, match=r"phase\.correction_loss: 'huber'"):
        registry.build_from("loss", "fusion", FusionConfig(correction_loss="huber", perceptual_weight=0.0), "phase")


def test_model_contracts():
    lic = registry.build("model", "lic", preset="tiny")
    vq = registry.build("model", "vq", preset="tiny")
    assert isinstance(lic, LICStream) and isinstance(vq, VQStream)
    assert not isinstance(lic, VQStream) and not isinstance(vq, LICStream)
    hdc = registry.build("model", "hdc", preset="tiny")
    assert isinstance(hdc, HybridModel)
    with pytest.raises(
        ConfigError, match=r"phase 'vq' needs a VQStream model \(missing: .*codebook_size.*\), got 'lic'"
    ):
        check_contract(lic, VQStream, "vq", "lic")
