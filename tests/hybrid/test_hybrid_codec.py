"""The hybrid codec: real files, both outputs, bpp = bytes, determinism, clear errors."""

from __future__ import annotations

import re
import struct

import pytest
import torch

from hdc_lightning.cli import main
from hdc_lightning.codec import export_checkpoint, load_codec, unpack
from hdc_lightning.codec.container import overhead_bytes
from hdc_lightning.codec.hybrid import MASK_MODES, HybridCodec, pack_params, unpack_params
from hdc_lightning.codec.imageio import read_image, write_image
from hdc_lightning.errors import BitstreamError, ConfigError
from hdc_lightning.models.hybrid import token_grid
from hdc_lightning.models.lic import pad_image
from tests.helpers.images import synthetic_image
from tests.helpers.models import random_init_checkpoint, tiny_model

H, W = 70, 100  # not a multiple of 16 or 64: exercises padding and cropping


@pytest.fixture(scope="module")
def image():
    return synthetic_image(H, W, seed=3)


@pytest.fixture(scope="module")
def encoded(hdc_codec, image):
    return hdc_codec.encode(image)


def test_cli_round_trip_both_outputs(tmp_path, hdc_ckpt, image, capsys):
    png = write_image(tmp_path / "img.png", image)
    hdc = tmp_path / "img.hdc"
    ck = str(hdc_ckpt)
    assert main(["compress", str(png), "-o", str(hdc), "--ckpt", ck, "--mask", "1/4"]) == 0
    line = capsys.readouterr().out
    size = hdc.stat().st_size
    assert f"{size} bytes" in line
    assert float(re.search(r"([0-9.]+) bpp", line).group(1)) == pytest.approx(size * 8 / (H * W), abs=1e-4)
    outs = {}
    for kind in ("perceptual", "fidelity"):
        out = tmp_path / f"{kind}.png"
        assert main(["decompress", str(hdc), "-o", str(out), "--ckpt", ck, "--output", kind]) == 0
        assert "indices" in capsys.readouterr().out
        outs[kind] = read_image(out)
        assert outs[kind].shape == (3, H, W)
    assert not torch.equal(outs["perceptual"], outs["fidelity"])
    # without --output: the perceptual reconstruction
    assert main(["decompress", str(hdc), "-o", str(tmp_path / "d.png"), "--ckpt", ck]) == 0
    assert torch.equal(read_image(tmp_path / "d.png"), outs["perceptual"])


def test_file_size_is_the_sum_of_streams_and_header(hdc_codec, encoded):
    dec = hdc_codec.decode(encoded)
    names = hdc_codec.model.lic.stream_names() + ["schedule", "indices"]
    assert list(dec.stream_bytes) == names
    assert len(encoded) == sum(dec.stream_bytes.values()) + dec.header_bytes
    lengths = list(dec.stream_bytes.values())
    assert dec.header_bytes == overhead_bytes(H, W, lengths, params_len=7)
    assert dec.image.shape == (3, H, W) and 0 <= float(dec.image.min()) and float(dec.image.max()) <= 1


def test_mask_modes_send_what_they_say(hdc_ckpt, hdc_codec, image):
    sizes, grid = {}, token_grid(H, W)
    for mode in MASK_MODES:
        codec = HybridCodec(hdc_codec.model, hdc_codec.model_id, mask=mode)
        data = codec.encode(image)
        header, out = codec.decode_full(data)
        sizes[mode] = dict(zip(codec.stream_names(), header.stream_lengths))["indices"]
        truth = codec.model.vq.encode_indices(pad_image(image[None], 16))[0]
        assert out.d_hat.shape == (1, *grid)
        assert torch.equal(out.d_hat[0][out.sent], truth[out.sent])  # sent indices arrive unchanged
        share = out.sent.float().mean().item()
        expected = {"full": 1.0, "none": 0.0}.get(mode)
        if expected is not None:
            assert share == expected
    assert sizes["none"] == 0 and sizes["full"] > sizes["1/4"] > sizes["1/9"] > 0
    with pytest.raises(ConfigError, match="mask mode"):
        load_codec(str(hdc_ckpt), mask="1/2")


def test_decoding_is_deterministic_across_thread_counts(hdc_codec, encoded):
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        _, a = hdc_codec.decode_full(encoded)
        torch.set_num_threads(2)
        _, b = hdc_codec.decode_full(encoded)
    finally:
        torch.set_num_threads(before)
    for x, y in [(a.x_tilde, b.x_tilde), (a.x_hat_lic, b.x_hat_lic), (a.d_hat, b.d_hat)]:
        assert torch.equal(x, y)
    # the sampler in the codec: same file → the very same DRVs, global RNG untouched
    state = torch.get_rng_state()
    _, c = hdc_codec.decode_full(encoded)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a.drvs.v_L, c.drvs.v_L) and torch.equal(a.drvs.v_P, c.drvs.v_P)


def test_header_seed_drives_the_drvs(hdc_ckpt, hdc_codec, image, encoded):
    other = load_codec(str(hdc_ckpt), seed=1234).encode(image)
    assert len(other) == len(encoded) and other != encoded  # only the params (and the CRC) differ
    _, a = hdc_codec.decode_full(encoded)
    _, b = hdc_codec.decode_full(other)
    assert not torch.equal(a.drvs.v_P, b.drvs.v_P)
    assert torch.equal(a.x_hat, b.x_hat)


def _reseal(data: bytes, params: bytes | None = None, streams: list[bytes] | None = None) -> bytes:
    """The same file with other params/streams and a valid CRC (a forgery, not corruption)."""
    from hdc_lightning.codec.container import pack

    c = unpack(data)
    h = c.header
    return pack(
        h.kind, h.model_id, h.height, h.width, streams or c.streams, params=h.params if params is None else params
    )


def _one_line_error(codec, data, *needles):
    with pytest.raises(BitstreamError) as info:
        codec.decode(data, source="x.hdc")
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("x.hdc")
    for n in needles:
        assert n in msg, msg


def test_corrupt_truncated_foreign_and_forged_files(tmp_path, hdc_codec, encoded):
    flipped = bytearray(encoded)
    flipped[len(flipped) // 2] ^= 0x40
    _one_line_error(hdc_codec, bytes(flipped), "CRC mismatch")
    _one_line_error(hdc_codec, encoded[: len(encoded) - 9], "CRC mismatch")
    _one_line_error(hdc_codec, b"\x89PNG\r\n\x1a\n" + bytes(40), "not an .hdc file")
    lic = load_codec(str(random_init_checkpoint(tmp_path / "lic.ckpt"))).encode(synthetic_image(H, W))
    _one_line_error(hdc_codec, lic, "made by model lic#")
    streams = unpack(encoded).streams
    _one_line_error(hdc_codec, _reseal(encoded, params=b"\x01\x09" + bytes(5)), "invalid hdc parameters")
    _one_line_error(hdc_codec, _reseal(encoded, params=b"\x02" + bytes(6)), "parameter version 2")
    _one_line_error(hdc_codec, _reseal(encoded, params=pack_params("full", 0, 1)), "does not match the schedule")
    _one_line_error(hdc_codec, _reseal(encoded, streams=streams[:-1]), "streams")
    bad_indices = streams[:-1] + [bytes(b ^ 0xFF for b in streams[-1])]
    _one_line_error(hdc_codec, _reseal(encoded, streams=bad_indices), "index stream")
    bad_schedule = streams[:-2] + [b"\x20\x02\xff", streams[-1]]
    _one_line_error(hdc_codec, _reseal(encoded, streams=bad_schedule), "mask schedule")


def test_a_file_from_other_weights_is_refused(tmp_path, hdc_codec, image):
    model, spec = tiny_model("hdc", 1)
    export_checkpoint(model, spec, str(tmp_path / "seed1.ckpt"))
    data = load_codec(str(tmp_path / "seed1.ckpt")).encode(image)
    _one_line_error(hdc_codec, data, "made by model hdc#", "decode it with the checkpoint")


def test_cli_option_errors_are_one_line(tmp_path, hdc_ckpt, image, capsys):
    png = write_image(tmp_path / "img.png", image)
    lic_ck = random_init_checkpoint(tmp_path / "lic.ckpt")
    assert main(["compress", str(png), "--ckpt", str(lic_ck), "--mask", "1/4"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--mask" in err
    assert main(["compress", str(png), "--ckpt", str(hdc_ckpt), "--mask", "1/3"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'1/3'" in err and "1/9" in err, err
    hdc = tmp_path / "img.hdc"
    assert main(["compress", str(png), "-o", str(hdc), "--ckpt", str(lic_ck)]) == 0
    assert main(["decompress", str(hdc), "--ckpt", str(lic_ck), "--output", "fidelity"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "output" in err


def test_params_layout():
    assert pack_params("auto", 7, 2) == struct.pack("<BBIB", 1, 0, 7, 2)
    assert pack_params("none", 2**32 - 1, 64)[1] == MASK_MODES.index("none")


def test_export_sets_the_mask_policy_and_nothing_else(tmp_path, hdc_ckpt, hdc_codec, image, capsys):
    out = tmp_path / "none.pt"
    assert main(["export", str(hdc_ckpt), "-o", str(out), "--mask", "none"]) == 0
    assert "mask policy none" in capsys.readouterr().out
    codec = load_codec(str(out))
    assert codec.mask == "none" and hdc_codec.mask != "none"
    assert codec.model_id.digest != hdc_codec.model_id.digest  # the spec is part of the id
    theirs = hdc_codec.model.state_dict()
    assert all(torch.equal(v, theirs[k]) for k, v in codec.model.state_dict().items())
    data = codec.encode(image)
    assert unpack_params(unpack(data).header.params, "x")[0] == "none"
    # the same x̃ as the old weights' codec gives at mask none: only the default changed
    same = hdc_codec.decode(hdc_codec.encode_one(image, mask="none")).image
    assert torch.equal(codec.decode(data).image, same)
    # --anchor-sigma: the perceptual decoder's setting, on top of the mask policy already written
    anchored = tmp_path / "anchored.pt"
    assert main(["export", str(out), "-o", str(anchored), "--anchor-sigma", "4"]) == 0
    assert "mask policy none, anchor σ 4 px" in capsys.readouterr().out
    codec2 = load_codec(str(anchored))
    assert codec2.model.perceptual.anchor_sigma == 4.0 and codec2.mask == "none"
    both = codec2.decode_full(codec2.encode(image), output="both")[1]
    before = codec.decode_full(data, output="both")[1]
    assert torch.equal(both.x_hat_lic, before.x_hat_lic) and not torch.equal(both.x_tilde, before.x_tilde)


def test_export_mask_errors_are_one_line(tmp_path, hdc_ckpt, capsys):
    lic_ck = random_init_checkpoint(tmp_path / "lic.ckpt")
    cases = [
        (hdc_ckpt, ["--mask", "1/3"], "'1/3'"),
        (lic_ck, ["--mask", "none"], "hybrid (hdc) checkpoints"),
        (hdc_ckpt, ["--anchor-sigma", "-1"], "--anchor-sigma -1"),
        (lic_ck, ["--anchor-sigma", "4"], "perceptual decoder"),
    ]
    for ckpt, option, needle in cases:
        assert main(["export", str(ckpt), "-o", str(tmp_path / "x.pt"), *option]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and needle in err, err
    assert not (tmp_path / "x.pt").exists()
