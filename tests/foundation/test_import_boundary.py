"""The library boundary: the codec, its models and the data/metrics layers need no Lightning.

Lightning lives in phases/, callbacks/, train.py, pipeline/ and cli/fit.py only. Checked
twice: statically (no import statement of Lightning anywhere in the library packages, lazy
ones included) and by running ``load_codec`` + encode + decode in a fresh interpreter.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.models import random_init_checkpoint

PKG = Path(__file__).resolve().parents[2] / "hdc_lightning"
LIBRARY = ("models", "codec", "losses", "data", "evaluation", "checkpoints.py", "registry.py", "errors.py")
FORBIDDEN = ("lightning", "pytorch_lightning", "lightning_fabric")


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def _library_files() -> list[Path]:
    files = []
    for entry in LIBRARY:
        path = PKG / entry
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return files


def test_library_modules_import_no_lightning():
    bad = [
        f"{f.relative_to(PKG.parent)} imports {name}"
        for f in _library_files()
        for name in _imports(f)
        if name.split(".")[0] in FORBIDDEN
        or name.startswith(
            ("hdc_lightning.phases", "hdc_lightning.callbacks", "hdc_lightning.train", "hdc_lightning.pipeline")
        )
    ]
    assert not bad, "\n".join(bad)


CHILD = r"""
import json, sys
import torch
from hdc_lightning.codec import load_codec
codec = load_codec(sys.argv[1])
x = torch.rand(3, 48, 40, generator=torch.Generator().manual_seed(0))
decoded = codec.decode(codec.encode(x))
assert decoded.image.shape == x.shape
heavy = ("lightning", "pytorch_lightning", "lightning_fabric", "hdc_lightning.phases", "hdc_lightning.callbacks")
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in heavy[:3] or m.startswith(heavy[3:]))))
"""


@pytest.mark.parametrize("model", ["lic", "hdc"])
def test_load_codec_encode_decode_leave_lightning_unimported(model, tmp_path):
    ckpt = random_init_checkpoint(tmp_path / f"{model}.ckpt", {"name": model, "preset": "tiny", "args": {}})
    proc = subprocess.run([sys.executable, "-c", CHILD, str(ckpt)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


def test_registry_imports_only_the_kind_asked_for():
    code = (
        "import sys; from hdc_lightning import registry; registry.get('model', 'lic'); "
        "print(sorted({m.split('.')[1] for m in sys.modules if m.startswith('hdc_lightning.')}))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = proc.stdout.strip().splitlines()[-1]
    assert "'models'" in loaded and "'phases'" not in loaded and "'losses'" not in loaded
