"""Config layering (base → phase → preset → overrides) and validation errors."""

from dataclasses import dataclass
from pathlib import Path

import pytest

from hdc_lightning.config import load_config, load_layers, parse_overrides
from hdc_lightning.config.schema import PhaseConfig
from hdc_lightning.errors import ConfigError
from hdc_lightning.phases.base import PhaseModule
from hdc_lightning.registry import register


@dataclass
class _CfgTestConfig(PhaseConfig):
    name: str = "_cfgtest"
    lr: float = 0.1  # every phase declares its own settings (one default each)


@register("phase", "_cfgtest")
class _CfgTestPhase(PhaseModule):
    """A phase used only to exercise schema validation."""

    Config = _CfgTestConfig


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture()
def layered(tmp_path):
    _write(
        tmp_path / "base.yaml",
        "run: {seed: 1}\ntrainer: {max_steps: 10, precision: 32-true}\n"
        "model: {name: whatever, preset: tiny}\nphase: {name: _cfgtest, lr: 0.1}\n",
    )
    _write(tmp_path / "p" / "base.yaml", "extends: ../base.yaml\ntrainer: {max_steps: 20}\nphase: {lr: 0.2}\n")
    return _write(tmp_path / "p" / "tiny.yaml", "extends: [base.yaml]\ntrainer: {val_check_interval: 5}\n")


def test_layers_merge_in_order(layered):
    cfg = load_config(layered, ["trainer.max_steps=30"])
    assert cfg["run"]["seed"] == 1  # from base
    assert cfg["phase"]["lr"] == 0.2  # phase layer overrides base
    assert cfg["trainer"]["val_check_interval"] == 5  # preset layer
    assert cfg["trainer"]["max_steps"] == 30  # CLI override wins
    assert cfg["trainer"]["log_every_n_steps"] == 10  # schema default
    assert cfg["run"]["name"] == "p-tiny"  # default name from the file


def test_run_name_override(layered):
    assert load_config(layered, ["run.name=exp1"])["run"]["name"] == "exp1"


def test_misspelt_key_names_its_path(layered):
    with pytest.raises(ConfigError, match=r"^trainer\.max_stepz: .*max_steps"):
        load_config(layered, ["trainer.max_stepz=3"])


def test_bad_type_names_its_path(layered):
    with pytest.raises(ConfigError, match=r"^trainer\.max_steps: "):
        load_config(layered, ["trainer.max_steps=many"])


def test_unknown_phase_key_fails(layered):
    with pytest.raises(ConfigError, match=r"^phase\.lrr: "):
        load_config(layered, ["phase.lrr=1"])


def test_unknown_phase_name_lists_known(layered):
    with pytest.raises(ConfigError, match=r"^phase\.name: unknown phase .nope.; known phases: .*_cfgtest"):
        load_config(layered, ["phase.name=nope"])


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.yaml")
    bad = _write(tmp_path / "bad.yaml", "run: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    scalar = _write(tmp_path / "scalar.yaml", "42\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(scalar)


def test_extends_cycle_detected(tmp_path):
    _write(tmp_path / "a.yaml", "extends: b.yaml\n")
    _write(tmp_path / "b.yaml", "extends: a.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_layers(tmp_path / "a.yaml")


def test_override_syntax():
    with pytest.raises(ConfigError, match="expected key.path=value"):
        parse_overrides(["trainer.max_steps"])


def test_yaml_cannot_construct_objects(tmp_path):
    evil = _write(tmp_path / "evil.yaml", "run: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(evil)


def test_repo_configs_validate(repo_root):
    """Every training config shipped in experiments/ loads and validates."""
    paths = [
        p
        for p in sorted((repo_root / "experiments").rglob("*.yaml"))
        if p.name not in ("base.yaml",) and p.parent.name not in ("pipeline",) and "ladder" not in p.stem
    ]
    for path in paths:
        cfg = load_config(path)
        assert cfg["phase"]["name"] and cfg["model"]["name"], path
