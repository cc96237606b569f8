"""`hdc import` of published VQGANs: key mapping, strict load, float64 equivalence with the
original code on random weights, refusals, the CLI, and the stage it writes in use."""

from __future__ import annotations

import json

import pytest
import torch

from hdc_lightning.checkpoints import load_state_dict
from hdc_lightning.cli import main
from hdc_lightning.cli.import_weights import KINDS
from hdc_lightning.errors import CheckpointError
from hdc_lightning.fileio import sha256_file
from hdc_lightning.importers import FAMILIES, MANIFEST, import_file
from hdc_lightning.registry import build, build_spec, get
from hdc_lightning.rundir import last_ckpt_of, resolve_checkpoints
from tests.helpers import published_vq as P
from tests.helpers.reliability import check_one_line, one_error

TAMING_REASON = "the taming-transformers wheel (make install: pip install --no-deps taming-transformers==0.0.1)"


def _taming_file(tmp_path, seed=0):
    pytest.importorskip("taming.modules.diffusionmodules.model", reason=TAMING_REASON)
    ref = P.taming_reference(seed)
    path = tmp_path / "last.ckpt"
    torch.save(P.taming_checkpoint(ref), path)
    return ref, path


def _llamagen_file(tmp_path, seed=0):
    state = P.llamagen_state(seed)
    path = tmp_path / "vq_ds16_c2i.pt"
    torch.save(P.llamagen_checkpoint(state), path)
    return state, path


def _stage_model(stage):
    """The model the stage directory holds, rebuilt from its manifest and loaded strictly, float64."""
    spec = json.loads((stage / MANIFEST).read_text())["model"]
    model = build_spec("model", spec)
    model.load_state_dict(load_state_dict(last_ckpt_of(stage), "model."), strict=True)
    return model.double().eval()


def _check_equivalent(model, idx_ref, x_ref, x):
    with torch.no_grad():
        idx = model.encode_indices(x)
        x_hat = model.decode_indices(idx)
    assert torch.equal(idx, idx_ref)
    k = model.codebook_size
    assert idx.unique().numel() >= k // 2, "too few distinct codes: the index comparison would say little"
    assert (x_hat - x_ref).abs().max().item() <= 1e-6
    assert x_ref.std() > 0.05  # a constant image would hide decoder mistakes


def _meta(shapes):
    return {k: torch.empty(s, device="meta") for k, s in shapes.items()}


def _fits_preset(ours, args, preset):
    """The shapes mean exactly our preset's arguments, and every tensor has the preset's shape."""
    kwargs = get("model", "vq").kwargs_for(preset, {})
    assert args == {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()}
    with torch.device("meta"):
        own = build("model", "vq", preset=preset).state_dict()
    wanted = {k: tuple(v.shape) for k, v in own.items() if not k.startswith("prior.")}
    assert {k: tuple(v.shape) for k, v in ours.items()} == wanted


# ---------------------------------------------------------------- mapping at the published shapes
@pytest.mark.parametrize("k", [1024, 16384])
def test_taming_f16_maps_onto_its_preset(k):
    pytest.importorskip("taming.modules.diffusionmodules.model", reason=TAMING_REASON)
    with torch.device("meta"):
        ref = P.TamingVQGAN(ch=128, ch_mult=(1, 1, 2, 2, 4), num_res_blocks=2, z=256, codebook_size=k, resolution=256)
    state = dict(ref.state_dict(), **{"loss.discriminator.main.0.weight": torch.empty(1, device="meta")})
    ours, args = FAMILIES["taming-vqgan"].convert(state, "f16.ckpt")
    _fits_preset(ours, args, f"taming-f16-{k}")


def test_llamagen_vq16_maps_onto_its_preset():
    shapes = P.llamagen_shapes(ch=128, ch_mult=(1, 1, 2, 2, 4), num_res_blocks=2, z=256, codebook_size=16384)
    ours, args = FAMILIES["llamagen-vq"].convert(_meta(shapes), "vq_ds16_c2i.pt")
    _fits_preset(ours, args, "llamagen-vq16")
    # attention q, k, v become one conv: 3·512 output channels at the lowest level
    assert tuple(ours["g_a.levels.4.1.qkv.weight"].shape) == (1536, 512, 1, 1)


# ---------------------------------------------------------------- equivalence on random weights
def test_taming_import_computes_what_taming_computes(tmp_path):
    ref, path = _taming_file(tmp_path)
    manifest = import_file("taming-vqgan", path, tmp_path / "stage")
    assert manifest["model"]["args"]["quantizer"] == "l2"
    x = P.images(0)
    with torch.no_grad():
        idx_ref, x_ref = ref(x)
    model = _stage_model(tmp_path / "stage")
    with torch.no_grad():  # the latent before the lookup too, not only what survives quantisation
        assert (model.quantizer.unquantised(model.g_a(2 * x - 1)) - ref.pre_quant(x)).abs().max() <= 1e-6
    _check_equivalent(model, idx_ref, x_ref, x)


def test_llamagen_import_computes_what_llamagen_computes(tmp_path):
    state, path = _llamagen_file(tmp_path)
    import_file("llamagen-vq", path, tmp_path / "stage")
    x = P.images(0)
    idx_ref, x_ref = P.llamagen_forward(state, x, P.SMALL["num_res_blocks"], len(P.SMALL["ch_mult"]))
    _check_equivalent(_stage_model(tmp_path / "stage"), idx_ref, x_ref, x)


def test_a_misplaced_tensor_is_caught_by_the_equivalence(tmp_path):
    """The comparison can fail: two norms swapped in the file change the output."""
    state, _ = _llamagen_file(tmp_path)
    a, b = "decoder.mid.0.norm1.weight", "decoder.mid.2.norm1.weight"
    swapped = dict(state, **{a: state[b], b: state[a]})
    path = tmp_path / "swapped.pt"
    torch.save(P.llamagen_checkpoint(swapped), path)
    import_file("llamagen-vq", path, tmp_path / "stage")
    x = P.images(0)
    idx_ref, x_ref = P.llamagen_forward(state, x, P.SMALL["num_res_blocks"], len(P.SMALL["ch_mult"]))
    with pytest.raises(AssertionError):
        _check_equivalent(_stage_model(tmp_path / "stage"), idx_ref, x_ref, x)


# ---------------------------------------------------------------- refusals
def _damaged(tmp_path, edit):
    state, _ = _llamagen_file(tmp_path)
    ckpt = P.llamagen_checkpoint(state)
    edit(ckpt["model"])
    path = tmp_path / "damaged.pt"
    torch.save(ckpt, path)
    return path


@pytest.mark.parametrize(
    "edit, needle",
    [
        (lambda s: s.pop("quantize.embedding.weight"), "has no quantize.embedding.weight"),
        (lambda s: s.pop("decoder.conv_blocks.0.attn.1.k.weight"), "lacks k"),
        (lambda s: s.update({"encoder.extra.weight": torch.zeros(1)}), "unexpected key 'encoder.extra.weight'"),
        (lambda s: s.pop("encoder.mid.2.conv2.bias"), "missing g_a.mid.2.conv2.bias"),
        (lambda s: s.update({"encoder.mid.0.conv1.bias": torch.zeros(7)}), "g_a.mid.0.conv1.bias has shape (7,)"),
    ],
)
def test_a_damaged_file_is_one_line_naming_it(tmp_path, edit, needle):
    path = _damaged(tmp_path, edit)
    with pytest.raises(CheckpointError) as err:
        import_file("llamagen-vq", path, tmp_path / "stage")
    check_one_line(str(err.value), str(path))
    assert needle in str(err.value)
    assert not (tmp_path / "stage").exists()


def test_wrong_kind_and_non_checkpoints_are_refused(tmp_path):
    _, llamagen = _llamagen_file(tmp_path)
    with pytest.raises(CheckpointError, match="has no 'state_dict'; not a taming-transformers checkpoint") as err:
        import_file("taming-vqgan", llamagen, tmp_path / "stage")
    check_one_line(str(err.value), str(llamagen))
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"\x80\x02not a checkpoint" * 10)
    with pytest.raises(CheckpointError, match="not a readable checkpoint") as err:
        import_file("llamagen-vq", junk, tmp_path / "stage")
    check_one_line(str(err.value), str(junk))


def test_code_in_the_file_is_refused_not_run(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model": {}, "hook": print}, path)  # a global a weights-only read must not admit
    with pytest.raises(CheckpointError, match="refers to print, which a weights-only read does not admit") as err:
        import_file("llamagen-vq", path, tmp_path / "stage")
    check_one_line(str(err.value), str(path))


# ---------------------------------------------------------------- the command and the stage in use
def test_cli_writes_a_stage_and_refuses_foreign_files(tmp_path, capsys):
    _, path = _llamagen_file(tmp_path)
    stage = tmp_path / "stage"
    assert main(["import", "llamagen-vq", str(path), "-o", str(stage)]) == 0
    out = capsys.readouterr().out
    assert "K=64" in out and "prefix: model." in out
    manifest = json.loads((stage / MANIFEST).read_text())
    assert manifest["source"]["sha256"] == sha256_file(path) and manifest["mapping_version"] == 1
    assert manifest["checkpoint_sha256"] == sha256_file(last_ckpt_of(stage))
    assert manifest["bpp_full_index_map"] == round(6 / 256, 4)
    assert main(["import", "llamagen-vq", str(path), "-o", str(stage)]) == 0  # its own output: replaced
    last_ckpt_of(stage).write_bytes(b"someone else's file")
    one_error(["import", "llamagen-vq", path, "-o", stage], capsys, "not written by hdc", "--force")
    one_error(["import", "taming-vqgan", path, "-o", tmp_path / "s2"], capsys, str(path), "'state_dict'")
    assert KINDS == tuple(FAMILIES)


def test_stage_loads_through_init_from_and_codes_as_a_rate_point(tmp_path):
    from hdc_lightning.codec import load_codec
    from tests.helpers.configs import tiny_config

    _, path = _llamagen_file(tmp_path)
    stage = tmp_path / "stage"
    manifest = import_file("llamagen-vq", path, stage)
    cfg = tiny_config("vq", tmp_path / "runs", None, "phase.perceptual_weight=0")
    cfg["model"] = manifest["model"]
    phase = get("phase", "vq").factory(cfg)
    report = phase.init_from({"model": manifest["init_from"]})
    assert report and "missing 0, unexpected 0" in report[0]
    expected = load_state_dict(last_ckpt_of(stage), "model.")
    assert all(torch.equal(v, expected[k]) for k, v in phase.model.state_dict().items())
    # `hdc eval STAGE_DIR` reads the same file as a VQ-only codec (full index map)
    (ckpt,) = resolve_checkpoints([stage])
    codec = load_codec(str(ckpt))
    image = P.images(3)[0].float()
    data = codec.encode(image)
    decoded = codec.decode(data)
    with torch.no_grad():
        model = codec.model
        expected_img = model.decode_indices(model.encode_indices(image[None]))[0].clamp(0, 1)
    assert torch.allclose(decoded.image, expected_img, atol=1e-6)
    assert decoded.stream_bytes["indices"] <= 16 * 16 * 6 / 8 + 16  # log2(64) bits an index, uniform prior


def test_recipe_takes_the_vq_from_an_imported_stage():
    from hdc_lightning.pipeline.plan import plan
    from hdc_lightning.pipeline.spec import load_pipeline
    from tests.helpers.configs import REPO

    spec, path = load_pipeline(REPO / "experiments/pipeline/paper-pretrained.yaml")
    drv = next(p for p in plan(spec, path) if p.stage.name == "drv")
    command = " ".join(drv.command())
    ckpt = path.parent / "../../pretrained/taming-f16-1024/checkpoints/last.ckpt"
    assert f"run.init_from.model.vq.ckpt={ckpt}" in command
    assert "model.args.parts.vq=taming-f16-1024" in command
