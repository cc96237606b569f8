"""Registry: names, presets, argument checks and their errors."""

import pytest

from hdc_lightning import registry
from hdc_lightning.errors import RegistryError


@registry.register("model", "_regtest", presets={"tiny": {"width": 2}, "paper": {"width": 64}})
class _RegTest:
    def __init__(self, width: int = 1, depth: int = 1):
        self.width, self.depth = width, depth


def test_build_with_preset_and_override():
    m = registry.build("model", "_regtest", preset="paper", depth=3)
    assert (m.width, m.depth) == (64, 3)
    m = registry.build_spec("model", {"name": "_regtest", "preset": "tiny", "args": {"depth": 2}})
    assert (m.width, m.depth) == (2, 2)


def test_unknown_name_lists_known():
    with pytest.raises(RegistryError, match=r"unknown model 'nope'; known models: .*_regtest"):
        registry.build("model", "nope")


def test_unknown_preset_lists_known():
    with pytest.raises(RegistryError, match=r"no preset 'huge'; known presets: paper, tiny"):
        registry.build("model", "_regtest", preset="huge")


def test_unknown_argument_names_key():
    with pytest.raises(RegistryError, match=r"model\.args\.heigth: .*takes no argument 'heigth'"):
        registry.build_spec("model", {"name": "_regtest", "preset": "tiny", "args": {"heigth": 2}})


def test_unknown_kind():
    with pytest.raises(RegistryError, match="unknown component kind"):
        registry.names("widget")


def test_double_registration_refused():
    with pytest.raises(RegistryError, match="registered twice"):
        registry.register("model", "_regtest")(type("Other", (), {}))


def test_every_registered_model_has_tiny_and_paper():
    for name in registry.names("model"):
        if name.startswith("_"):
            continue
        presets = registry.get("model", name).presets
        assert {"tiny", "paper"} <= set(presets), f"model '{name}' lacks a tiny or paper preset"
