"""`hdc decompress --realism A`: the learned knob of a realism-conditioned decoder (the default),
and the pixel blend, whose 0 and 1 are the two outputs exactly, in between a fixed mix."""

from __future__ import annotations

import pytest
import torch

from hdc_lightning.cli import main
from hdc_lightning.codec import load_codec
from hdc_lightning.codec.imageio import read_image, write_image
from hdc_lightning.errors import ConfigError
from hdc_lightning.evaluation.runner import EvalOptions, run_eval
from tests.helpers.images import synthetic_image
from tests.helpers.models import random_init_checkpoint

HDC_TINY = {"name": "hdc", "preset": "tiny", "args": {}}
BLEND = {"realism_mode": "blend"}


@pytest.fixture(scope="module")
def coded(tmp_path_factory):
    d = tmp_path_factory.mktemp("realism")
    ckpt = random_init_checkpoint(d / "hdc-tiny.ckpt", HDC_TINY, seed=0)
    codec = load_codec(str(ckpt))
    data = codec.encode(synthetic_image(48, 64, seed=3))
    _, both = codec.decode_full(data)  # the model's two outputs, independent of the realism code
    return ckpt, codec, data, both


def test_ends_are_the_two_outputs_exactly(coded):
    _, codec, data, both = coded
    assert torch.equal(codec.decode(data, realism=0, **BLEND).image, both.x_hat_lic[0])
    assert torch.equal(codec.decode(data, realism=1, **BLEND).image, both.x_tilde[0])
    assert torch.equal(codec.decode(data, realism=0, **BLEND).image, codec.decode(data, output="fidelity").image)
    assert torch.equal(codec.decode(data).image, both.x_tilde[0])


def test_learned_realism_decodes_x_tilde_at_that_level(tmp_path):
    ckpt = random_init_checkpoint(tmp_path / "hdc-tiny.ckpt", HDC_TINY, seed=0)
    codec = load_codec(str(ckpt))
    assert codec.realism_mode() == "learned"
    with torch.no_grad():  # a trained decoder: its realism heads away from zero
        for head in codec.model.perceptual.realism.heads.values():
            torch.nn.init.normal_(head.weight, std=0.5)
    data = codec.encode(synthetic_image(48, 64, seed=3))
    at = {a: codec.decode(data, realism=a).image for a in (0.0, 0.5, 1.0)}
    _, full = codec.decode_full(data, realism=0.5)
    assert torch.equal(at[0.5], full.x_tilde[0])
    assert torch.equal(at[1.0], codec.decode(data).image)  # the default output is a = 1
    assert not torch.equal(at[0.0], at[1.0])


def test_learned_mode_needs_a_conditioned_decoder(tmp_path):
    spec = {"name": "hdc", "preset": "tiny", "args": {"perceptual": "latent"}}
    codec = load_codec(str(random_init_checkpoint(tmp_path / "latent.ckpt", spec, seed=0)))
    assert codec.realism_mode() == "blend"
    data = codec.encode(synthetic_image(48, 64, seed=3))
    with pytest.raises(ConfigError, match="not realism-conditioned"):
        codec.decode(data, realism=0.5, realism_mode="learned")
    with pytest.raises(ConfigError, match="unknown"):
        codec.decode(data, realism=0.5, realism_mode="pixels")


def test_middle_is_the_deterministic_mix(coded):
    _, codec, data, both = coded
    a, b = codec.decode(data, realism=0.25, **BLEND).image, codec.decode(data, realism=0.25, **BLEND).image
    assert torch.equal(a, b)
    expected = (0.75 * both.x_hat_lic[0] + 0.25 * both.x_tilde[0]).clamp(0, 1)
    assert torch.equal(a, expected)
    assert not torch.equal(a, both.x_hat_lic[0]) and not torch.equal(a, both.x_tilde[0])


@pytest.mark.parametrize("bad", [1.5, -0.1, float("nan"), "abc"])
def test_bad_realism_raises(coded, bad):
    _, codec, data, _ = coded
    with pytest.raises(ConfigError):
        codec.decode(data, realism=bad)


def test_output_and_realism_must_agree(coded):
    _, codec, data, _ = coded
    with pytest.raises(ConfigError, match="contradicts"):
        codec.decode(data, output="fidelity", realism=1)


def test_cli_realism_zero_writes_the_fidelity_png(tmp_path, coded, capsys):
    ckpt, _, data, _ = coded
    f = tmp_path / "x.hdc"
    f.write_bytes(data)
    base = ["decompress", str(f), "--ckpt", str(ckpt)]
    assert main([*base, "-o", str(tmp_path / "fid.png"), "--output", "fidelity"]) == 0
    assert main([*base, "-o", str(tmp_path / "a0.png"), "--realism", "0", "--realism-mode", "blend"]) == 0
    assert torch.equal(read_image(tmp_path / "fid.png"), read_image(tmp_path / "a0.png"))
    for bad in ("1.5", "abc", "-1"):
        assert main([*base, "-o", str(tmp_path / "bad.png"), "--realism", bad]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "--realism" in err, err


def test_eval_realism_curve_and_target_curve(tmp_path, coded):
    ckpt, _, _, _ = coded
    folder = tmp_path / "imgs"
    folder.mkdir()
    write_image(folder / "a.png", synthetic_image(48, 64, seed=3))
    opts = EvalOptions(
        lpips=False, dists=False, fid=False, ms_ssim=False, progress=False, realism=[0, 0.5, 1], realism_mode="blend"
    )
    summary = run_eval([ckpt], folder, tmp_path / "pd", opts=opts)
    r = summary.curves[0].results
    assert len(r["bpp"]) == 3 and len(set(r["bpp"])) == 1  # one rate point, three decodes
    assert r["psnr-rgb"][0] != r["psnr-rgb"][2]
    opts = EvalOptions(lpips=False, dists=False, fid=False, ms_ssim=False, progress=False, target_bpp=[0.01, 50])
    summary = run_eval([ckpt], folder, tmp_path / "rc", opts=opts)
    bpp = summary.curves[0].results["bpp"]
    assert bpp[0] > 0.01 and bpp[1] <= 50  # 0.01 is unreachable: coded at the smallest size, flagged


def test_the_bitstream_does_not_depend_on_the_realism_level(tmp_path, capsys):
    """A is a decode-time choice: the encoder takes none, and every A reads the same bytes to the
    same fidelity output and index map; only x̃ moves."""
    ckpt = random_init_checkpoint(tmp_path / "hdc-tiny.ckpt", HDC_TINY, seed=0)
    codec = load_codec(str(ckpt))
    with torch.no_grad():
        for head in codec.model.perceptual.realism.heads.values():
            torch.nn.init.normal_(head.weight, std=0.5)
    image = synthetic_image(48, 64, seed=5)
    data = codec.encode(image)
    assert codec.encode(image) == data
    full = {a: codec.decode_full(data, realism=a)[1] for a in (0.0, 0.5, 1.0)}
    for a in (0.5, 1.0):
        assert torch.equal(full[a].x_hat_lic, full[0.0].x_hat_lic)
        assert torch.equal(full[a].d_hat, full[0.0].d_hat) and torch.equal(full[a].y_hat, full[0.0].y_hat)
    assert not torch.equal(full[0.0].x_tilde, full[1.0].x_tilde)
    src = tmp_path / "a.png"
    write_image(src, image)
    with pytest.raises(SystemExit):  # compress has no realism option: nothing to put in the file
        main(["compress", str(src), "--ckpt", str(ckpt), "--realism", "0.5"])
    capsys.readouterr()
