"""Committed ``.hdc`` files of the shipped models decode to the same discrete quantities anywhere.

What every machine must agree on is pinned here, and nothing that only this CPU computes:
the model ids (a function of the stored weights and tables), the LIC's decoded latent, the
hybrid's sent mask, sent indices and T's completed index map. The encoder's bytes are not
pinned (its analysis transform rounds per CPU), and the 8-bit outputs are compared with the
committed decodes within a small tolerance (float synthesis; docs/format.md has the measured
differences between kernel sets).

The files change only when a shipped model is retrained or the format changes. After such a
change, re-pin on purpose (and update the model card's ids and md5s)::

    HDC_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/codec/test_golden_files.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hdc_lightning.codec import load_codec
from hdc_lightning.evaluation.portability import decode_record
from tests.helpers.images import synthetic_image

HERE = Path(__file__).parent / "golden"
EXPECTED = HERE / "expected.json"
MODELS = ("small-lic", "small")
UPDATE = bool(os.environ.get("HDC_UPDATE_GOLDEN"))
REPIN = "re-pin on purpose with HDC_UPDATE_GOLDEN=1 (see this file's docstring)"


def _expected() -> dict:
    return json.loads(EXPECTED.read_text()) if EXPECTED.is_file() else {}


@pytest.mark.parametrize("name", MODELS)
def test_committed_file_decodes_to_the_pinned_quantities(name):
    codec = load_codec(name)
    path = HERE / f"{name}.hdc"
    if UPDATE:
        path.write_bytes(codec.encode(synthetic_image(96, 128, seed=3)))
    digests, pixels = decode_record(codec, path.read_bytes(), str(path))
    if UPDATE:
        table = _expected()
        table[name] = {"model_id": str(codec.model_id), **{k: v for k, v in digests.items() if k not in pixels}}
        EXPECTED.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
        for out, arr in pixels.items():
            Image.fromarray(arr).save(HERE / f"{name}-{out}.png")
    want = _expected()[name]
    assert str(codec.model_id) == want["model_id"], (
        f"shipped model {name} has id {codec.model_id}, pinned {want['model_id']}: its weights or tables changed; {REPIN}"
    )
    for key, md5 in want.items():
        if key != "model_id":
            assert digests[key] == md5, f"{path.name}: decoded {key} changed (a model, format or coder change); {REPIN}"
    for out, arr in pixels.items():
        ref = np.asarray(Image.open(HERE / f"{name}-{out}.png")).astype(np.int16)
        diff = np.abs(arr.astype(np.int16) - ref)
        assert diff.max() <= 2 and (diff > 0).mean() <= 1e-3, f"{path.name}: {out} output moved beyond float noise"


def test_the_card_states_the_pinned_ids():
    from hdc_lightning import pretrained

    card = pretrained.card_path("small").read_text()
    for name in MODELS:
        assert _expected()[name]["model_id"] in card, f"the model card lacks {name}'s id"
