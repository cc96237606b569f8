"""`hdc import mlicpp`: key mapping, strict load, the same function in float64, refusals,
the CLI, and the imported stage in use (LIC phase init_from, the codec's real bytes)."""

from __future__ import annotations

import json

import pytest
import torch

from hdc_lightning.checkpoints import load_state_dict
from hdc_lightning.cli import main
from hdc_lightning.codec import load_codec
from hdc_lightning.errors import CheckpointError
from hdc_lightning.fileio import sha256_file
from hdc_lightning.importers import FAMILIES, MANIFEST, import_file
from hdc_lightning.registry import build, build_spec, get
from hdc_lightning.rundir import last_ckpt_of
from tests.helpers import published_mlicpp as P
from tests.helpers.images import synthetic_image
from tests.helpers.models import tiny_model
from tests.helpers.reliability import check_one_line, one_error


def _source(seed=0):
    model, _ = tiny_model("mlicpp", seed=seed)
    P.randomise(model, seed)
    return model


def _file(tmp_path, model, edit=None):
    state = P.published_state(model)
    if edit:
        edit(state)
    path = tmp_path / "mlicpp_tiny.pth.tar"
    torch.save(P.published_checkpoint(model, state), path)
    return path


def _stage_model(stage):
    spec = json.loads((stage / MANIFEST).read_text())["model"]
    model = build_spec("model", spec)
    model.load_state_dict(load_state_dict(last_ckpt_of(stage), "model."), strict=True)
    return model.double().eval()


def test_the_published_size_maps_onto_its_preset():
    with torch.device("meta"):
        model = build("model", "mlicpp", preset="paper")
    assert sum(p.numel() for p in model.parameters()) == 83_501_408  # MLIC++'s 83.5 M
    state = P.published_state(model, tables=False)
    ours, args = FAMILIES["mlicpp"].convert(state, "f")
    assert args == get("model", "mlicpp").kwargs_for("paper", {})
    own = {k for k in model.state_dict() if not k.startswith(FAMILIES["mlicpp"].own_state)}
    assert set(ours) == own
    assert all(ours[k].shape == v.shape for k, v in model.state_dict().items() if k in ours)


def test_import_computes_what_the_source_computes(tmp_path):
    source = _source().double()
    path = _file(tmp_path, source)
    manifest = import_file("mlicpp", path, tmp_path / "stage")
    assert manifest["model"]["name"] == "mlicpp" and manifest["source"]["sha256"] == sha256_file(path)
    model = _stage_model(tmp_path / "stage")
    x = synthetic_image(64, 128, seed=4)[None].double()
    symbols = []
    hook = model.gaussian_conditional.register_forward_hook(lambda m, a, o: symbols.append(torch.round(a[0] - a[2])))
    with torch.no_grad():
        ours, ref = model(x), source(x)
    hook.remove()
    assert (ours.x_hat - ref.x_hat).abs().max() <= 1e-6
    for k in ("y", "z"):
        assert (ours.likelihoods[k] - ref.likelihoods[k]).abs().max() <= 1e-6
    assert torch.cat([s.flatten() for s in symbols]).ne(0).double().mean() > 0.2  # not vacuous
    # our tables, built for our scale table, replaced the file's 64-level ones
    assert model.gaussian_conditional.scale_table.numel() == model.scale_levels
    assert model.gelu_table.numel() > 0


def test_a_swapped_tensor_is_caught_by_the_equivalence(tmp_path):
    source = _source().double()

    def swap(state):
        a, b = "local_context.0.norm1.weight", "local_context.1.norm1.weight"
        state[a], state[b] = state[b], state[a]

    import_file("mlicpp", _file(tmp_path, source, swap), tmp_path / "stage")
    model = _stage_model(tmp_path / "stage")
    x = synthetic_image(64, 64, seed=5)[None].double()
    with torch.no_grad():
        assert (model(x).likelihoods["y"] - source(x).likelihoods["y"]).abs().max() > 1e-3


@pytest.mark.parametrize(
    "edit,needle",
    [
        (lambda s: s.pop("h_a.reduction.0.weight"), "has no h_a.reduction.0.weight"),
        (lambda s: s.pop("lrp_anchor.1.lrp_transform.2.bias"), "missing lrp_anchor.1.lrp_transform.2.bias"),
        (lambda s: s.update({"global_inter_context.1.keys.0.bias": torch.zeros(3)}), "has shape (3,)"),
        (lambda s: s.update({"extra.weight": torch.zeros(1)}), "extra extra.weight"),
        (  # the 2023-09 files: SynthesisTransformOld begins with a block from M to N channels
            lambda s: s.update({"g_s.synthesis_transform.0.conv1.weight": torch.zeros(32, 64, 3, 3)}),
            "of 2023-09",
        ),
    ],
)
def test_a_damaged_file_is_one_line_naming_it(tmp_path, edit, needle):
    path = _file(tmp_path, _source(), edit)
    with pytest.raises(CheckpointError) as err:
        import_file("mlicpp", path, tmp_path / "stage")
    check_one_line(str(err.value), str(path))
    assert needle in str(err.value)
    assert not (tmp_path / "stage").exists()


def test_cli_and_the_stage_in_use(tmp_path, capsys):
    from tests.helpers.configs import tiny_config

    path = _file(tmp_path, _source())
    stage = tmp_path / "stage"
    assert main(["import", "mlicpp", str(path), "-o", str(stage)]) == 0
    assert "N=32, M=64, 2 slices" in capsys.readouterr().out
    one_error(["import", "taming-vqgan", path, "-o", tmp_path / "s2"], capsys, str(path), "not a file of this kind")
    manifest = json.loads((stage / MANIFEST).read_text())
    # the LIC phase takes it through init_from, strictly
    cfg = tiny_config("lic", tmp_path / "runs", None)
    cfg["model"] = manifest["model"]
    phase = get("phase", "lic").factory(cfg)
    report = phase.init_from({"model": manifest["init_from"]})
    assert report and "missing 0, unexpected 0" in report[0]
    # and the stage codes real bytes that decode to what was coded
    codec = load_codec(str(last_ckpt_of(stage)))
    image = synthetic_image(64, 96, seed=6)
    data = codec.encode(image)
    decoded = codec.decode(data)
    c = codec.model.compress(image[None])
    assert decoded.image.shape == image.shape and len(data) > sum(decoded.stream_bytes.values()) > 0
    assert torch.equal(codec.model.decompress(c.strings, c.shape).y_hat, c.y_hat)


def test_recipe_takes_the_lic_from_an_imported_mlicpp(tmp_path):
    from hdc_lightning.pipeline.plan import plan
    from hdc_lightning.pipeline.spec import load_pipeline
    from tests.helpers.configs import REPO

    spec, path = load_pipeline(REPO / "experiments/pipeline/paper-pretrained.yaml")
    stages = {p.stage.name: " ".join(p.command()) for p in plan(spec, path)}
    ckpt = path.parent / "../../pretrained/mlicpp-0018/checkpoints/last.ckpt"
    assert f"run.init_from.model.ckpt={ckpt}" in stages["lic"] and "model.name=mlicpp" in stages["lic"]
    for name in ("drv", "fusion"):
        assert "model.args.parts.lic.name=mlicpp" in stages[name]
