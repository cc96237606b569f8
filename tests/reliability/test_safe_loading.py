"""Safe loading: checkpoints are read with ``weights_only=True`` (pickled code is refused
before it can run), a checkpoint of another model or preset is refused naming the
mismatch, and configs cannot run code or import arbitrary paths (registry names only).

The CLI is called in-process here (``hdc_lightning.cli.main``): every case fails before
the first training step, and the exit status and the one-line message are what is checked.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from hdc_lightning.cli import main
from hdc_lightning.codec import export_checkpoint, load_codec
from hdc_lightning.errors import CheckpointError
from hdc_lightning.registry import build
from tests.helpers.configs import REPO, TINY_LIC, fit_overrides
from tests.helpers.reliability import check_one_line

SRC = REPO / "hdc_lightning"


class _Payload:
    """Unpickling this calls ``Path.touch(sentinel)``: proof that code ran."""

    def __init__(self, sentinel: Path):
        self.sentinel = sentinel

    def __reduce__(self):
        return (Path.touch, (self.sentinel,))


@pytest.fixture(autouse=True)
def _keep_seed_env(monkeypatch):
    # In-process fits call seed_everything, which exports PL_GLOBAL_SEED; keep it local.
    monkeypatch.delenv("PL_GLOBAL_SEED", raising=False)


def _hdc(capsys, *argv) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip()
    return code, err


def _error_line(err: str, command: str = "fit") -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith(f"hdc {command}: error:")]
    assert len(lines) == 1, err[-2000:]
    check_one_line(lines[0])
    return lines[0]


# ---- checkpoints ---------------------------------------------------------------------------
def test_checkpoint_with_pickled_code_is_refused_by_load_codec(tmp_path):
    sentinel = tmp_path / "code-ran"
    path = tmp_path / "evil.ckpt"
    torch.save(
        {"state_dict": {}, "hyper_parameters": {"cfg": {"model": {"name": "lic"}}}, "x": _Payload(sentinel)}, path
    )
    with pytest.raises(CheckpointError) as err:
        load_codec(str(path))
    check_one_line(str(err.value), str(path))
    assert "not a readable checkpoint" in str(err.value)
    assert not sentinel.exists(), "unpickling ran code"


def test_junk_bytes_read_as_a_legacy_file_say_so(tmp_path):
    from hdc_lightning.checkpoints import safe_load

    path = tmp_path / "download.ckpt"
    path.write_bytes(b"junk\n")  # what a failed download can leave: torch's legacy reader fails with a bare key
    with pytest.raises(CheckpointError) as err:
        safe_load(path, legacy=True)
    check_one_line(str(err.value), str(path))
    assert "its bytes are not a torch checkpoint" in str(err.value)


def test_resume_from_a_checkpoint_with_pickled_code_is_refused(tmp_path, tiny_shards, capsys):
    sentinel = tmp_path / "code-ran"
    ckdir = tmp_path / "runs" / "evil" / "checkpoints"
    ckdir.mkdir(parents=True)
    torch.save({"global_step": 3, "state_dict": {}, "x": _Payload(sentinel)}, ckdir / "last.ckpt")
    over = fit_overrides(tmp_path / "runs", tiny_shards, name="evil", max_steps=4, every=2)
    code, err = _hdc(capsys, "fit", TINY_LIC, *over, "run.resume=true")
    assert code == 2
    line = _error_line(err)
    assert str(ckdir / "last.ckpt") in line and "not a readable checkpoint" in line
    assert not sentinel.exists(), "unpickling ran code"


def test_init_from_a_checkpoint_of_another_preset_names_the_mismatch(tmp_path, tiny_shards, capsys):
    torch.manual_seed(0)
    other = {"name": "lic", "preset": "tiny", "args": {"M": 96, "groups": [16, 80]}}
    export_checkpoint(build("model", "lic", preset="tiny", M=96, groups=[16, 80]), other, str(tmp_path / "m96.ckpt"))
    over = fit_overrides(tmp_path / "runs", tiny_shards, name="x", max_steps=4, every=2)
    code, err = _hdc(
        capsys,
        "fit",
        TINY_LIC,
        *over,
        f"run.init_from.model.ckpt={tmp_path / 'm96.ckpt'}",
        "run.init_from.model.prefix=model.",
    )
    assert code == 2
    line = _error_line(err)
    assert "m96.ckpt" in line and "has shape" in line and "expects" in line and "another model or preset" in line


def test_init_from_a_checkpoint_of_another_model_is_refused(tmp_path, tiny_shards, capsys):
    torch.manual_seed(0)
    vq = {"name": "vq", "preset": "tiny", "args": {}}
    export_checkpoint(build("model", "vq", preset="tiny"), vq, str(tmp_path / "vq.ckpt"))
    over = fit_overrides(tmp_path / "runs", tiny_shards, name="x", max_steps=2, every=2)
    code, err = _hdc(
        capsys,
        "fit",
        TINY_LIC,
        *over,
        f"run.init_from.model.ckpt={tmp_path / 'vq.ckpt'}",
        "run.init_from.model.prefix=model.",
    )
    assert code == 2, "a checkpoint sharing no weight with the module must not load silently"
    line = _error_line(err)
    assert "vq.ckpt" in line and "'model'" in line


def test_load_codec_refuses_other_models_and_presets(tmp_path):
    torch.manual_seed(0)
    export_checkpoint(build("model", "vq", preset="tiny"), {"name": "vq", "preset": "tiny"}, str(tmp_path / "vq.ckpt"))
    assert load_codec(str(tmp_path / "vq.ckpt")).name == "vq"  # a VQ stage codes its full index map
    no_codec = {"state_dict": {"model.w": torch.zeros(1)}, "hyper_parameters": {"cfg": {"model": {"name": "masks"}}}}
    torch.save(no_codec, tmp_path / "masks.ckpt")
    with pytest.raises(CheckpointError, match=r"holds model 'masks', which has no codec; codecs exist for: .*lic"):
        load_codec(str(tmp_path / "masks.ckpt"))
    export_checkpoint(
        build("model", "lic", preset="tiny"), {"name": "lic", "preset": "paper"}, str(tmp_path / "labelled-paper.ckpt")
    )
    with pytest.raises(CheckpointError, match=r"model spec \(lic/paper\) asks for .* another model or preset") as err:
        load_codec(str(tmp_path / "labelled-paper.ckpt"))
    check_one_line(str(err.value), str(tmp_path / "labelled-paper.ckpt"))


def test_no_unsafe_deserialisation_or_eval_in_the_package():
    """A source scan (AST): the package's one ``torch.load`` passes ``weights_only=True``;
    no ``pickle.load``, ``yaml.load``/``unsafe_load``, ``eval`` or ``exec`` anywhere."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            name = (
                f"{f.value.id}.{f.attr}"
                if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name)
                else (f.id if isinstance(f, ast.Name) else "")
            )
            if name in (
                "torch.load",
                "pickle.load",
                "pickle.loads",
                "yaml.load",
                "yaml.unsafe_load",
                "eval",
                "exec",
                "marshal.loads",
                "dill.load",
            ):
                safe = name == "torch.load" and any(
                    k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
                    for k in node.keywords
                )
                found.append((path.relative_to(REPO).as_posix(), name, safe))
    assert found == [("hdc_lightning/checkpoints.py", "torch.load", True)], found


def test_the_one_unpickler_is_the_restricted_one():
    """`hdc weights` reads third-party pickles: through a subclass of pickle.Unpickler whose
    find_class admits numpy's array reconstruction only (tests/losses/test_weights.py)."""
    subclasses = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(ast.unparse(b).endswith("Unpickler") for b in node.bases):
                methods = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
                subclasses.append((path.relative_to(REPO).as_posix(), node.name, "find_class" in methods))
    assert subclasses == [("hdc_lightning/weights.py", "ArrayUnpickler", True)], subclasses


# ---- configs ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "tag",
    [
        "!!python/object/apply:pathlib.Path.touch",
        "!!python/object/new:pathlib.Path",
        "!!python/name:os.system",
    ],
)
def test_yaml_python_tags_are_refused(tmp_path, capsys, tag):
    sentinel = tmp_path / "code-ran"
    cfg = tmp_path / "evil.yaml"
    cfg.write_text(f"extends: {TINY_LIC}\nrun:\n  name: {tag} ['{sentinel}']\n")
    code, err = _hdc(capsys, "fit", cfg, "--print-config")
    assert code == 2
    line = _error_line(err)
    assert str(cfg) in line and "not valid YAML" in line
    assert not sentinel.exists()


def test_python_tags_in_overrides_and_pipelines_run_nothing(tmp_path, capsys):
    sentinel = tmp_path / "code-ran"
    code, err = _hdc(
        capsys, "fit", TINY_LIC, f"run.name=!!python/object/apply:pathlib.Path.touch ['{sentinel}']", "--print-config"
    )
    assert code == 2 and not sentinel.exists()
    _error_line(err)
    pipe = tmp_path / "pipe.yaml"
    pipe.write_text(f"name: !!python/object/apply:pathlib.Path.touch ['{sentinel}']\nstages: []\n")
    code, err = _hdc(capsys, "pipeline", pipe, "--dry-run")
    assert code == 2 and not sentinel.exists()
    assert "not valid YAML" in _error_line(err, "pipeline")


@pytest.mark.parametrize(
    "override, known",
    [
        ("model.name=os.system", "known models"),
        ("model.name=hdc_lightning.models.lic.model.LIC", "known models"),
        ("phase.name=builtins.eval", "known phases"),
        ("model._target_=os.system", "_target_"),
        ("model.args.__class__=os.system", "takes no argument '__class__'"),
    ],
)
def test_components_come_from_registry_names_only(tmp_path, tiny_shards, capsys, override, known):
    over = fit_overrides(tmp_path / "runs", tiny_shards, name="x", max_steps=2, every=2)
    code, err = _hdc(capsys, "fit", TINY_LIC, *over, override)
    assert code == 2
    assert known in _error_line(err)
    assert not (tmp_path / "runs" / "x" / "checkpoints" / "last.ckpt").exists()


def test_an_old_lightning_checkpoint_reads_with_its_callback_classes_inert(tmp_path, monkeypatch):
    """PyTorch Lightning 1.0 keyed callback states by the callback class (taming's VQGAN
    checkpoints): ``safe_load(legacy=True)`` reads such a file, the class becomes
    ``LegacyObject`` and no code of it runs; without ``legacy`` it is refused in one line."""
    import sys
    import types

    from hdc_lightning.checkpoints import LegacyObject, safe_load

    sentinel = tmp_path / "code-ran"
    names = {"ModelCheckpoint": "model_checkpoint", "EarlyStopping": "early_stopping"}
    classes = {}
    for cls_name, mod_name in names.items():  # stand-ins with the published module paths
        module = types.ModuleType(f"pytorch_lightning.callbacks.{mod_name}")
        cls = type(cls_name, (), {"__reduce__": lambda self: (sentinel.touch, ())})
        cls.__module__ = module.__name__
        setattr(module, cls_name, cls)
        monkeypatch.setitem(sys.modules, module.__name__, module)
        classes[cls_name] = cls
    path = tmp_path / "last.ckpt"
    weight = torch.arange(6.0).reshape(2, 3)
    callbacks = {classes["ModelCheckpoint"]: {"best_model_score": torch.tensor(0.5)}, classes["EarlyStopping"]: {}}
    torch.save({"state_dict": {"encoder.conv_in.weight": weight}, "callbacks": callbacks}, path)
    for mod_name in names.values():  # the reading side has no Lightning 1.0
        monkeypatch.delitem(sys.modules, f"pytorch_lightning.callbacks.{mod_name}")
    ckpt = safe_load(path, legacy=True)
    assert torch.equal(ckpt["state_dict"]["encoder.conv_in.weight"], weight)
    assert list(ckpt["callbacks"]) == [LegacyObject]  # both classes read as one inert key: unused by importers
    assert not sentinel.exists()
    with pytest.raises(CheckpointError) as err:
        safe_load(path)
    check_one_line(str(err.value), str(path))
    assert "pytorch_lightning.callbacks" in str(err.value)
