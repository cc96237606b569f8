"""The LIC-only codec: real files, determinism, and refusal of wrong inputs.

Files pinned across machines are the shipped models' (test_golden_files.py): a random-init
model's tables are built on the machine that loads it, so its bytes are this CPU's only.
"""

from __future__ import annotations

import pytest
import torch

from hdc_lightning.codec import Decoded, ImageCodec, export_checkpoint, load_codec, unpack
from hdc_lightning.codec.container import pack
from hdc_lightning.errors import BitstreamError, CheckpointError, DataError
from tests.helpers.images import synthetic_image
from tests.helpers.models import tiny_model


def test_encode_decode_round_trip(tiny_codec):
    assert isinstance(tiny_codec, ImageCodec)
    image = synthetic_image(70, 150, seed=None)  # not a multiple of 64: padded, then cropped back
    data = tiny_codec.encode(image)
    decoded = tiny_codec.decode(data)
    assert isinstance(decoded, Decoded) and decoded.image.shape == image.shape
    assert decoded.image.min() >= 0 and decoded.image.max() <= 1
    assert sum(decoded.stream_bytes.values()) + decoded.header_bytes == len(data)
    assert list(decoded.stream_bytes) == tiny_codec.model.stream_names()
    # the codec's image is exactly what the model's own decompress gives
    c = tiny_codec.model.compress(image[None])
    ref = tiny_codec.model.decompress(c.strings, c.shape).x_hat[0].clamp(0, 1)
    assert torch.equal(decoded.image, ref)


def test_same_image_same_bytes(tiny_codec, tmp_path):
    image = synthetic_image(96, 128, seed=None)
    data = tiny_codec.encode(image)
    assert tiny_codec.encode(image) == data
    again = tmp_path / "again.ckpt"  # the same seeded weights, exported and loaded again
    export_checkpoint(*tiny_model("lic", seed=0), str(again))
    assert load_codec(str(again)).encode(image) == data


def test_file_from_other_weights_names_both_ids(tiny_codec, other_ckpt):
    data = load_codec(str(other_ckpt)).encode(synthetic_image(64, 64, seed=None))
    with pytest.raises(BitstreamError) as e:
        tiny_codec.decode(data, source="x.hdc")
    msg = str(e.value)
    other_id = unpack(data).header.model_id.hex()
    assert other_id in msg and tiny_codec.model_id.digest.hex() in msg and "lic/tiny#" in msg


def test_checkpoint_of_another_model(tmp_path):
    model, _ = tiny_model("lic", seed=0)
    foreign = tmp_path / "foreign.ckpt"
    export_checkpoint(model, {"name": "no-such-codec", "preset": None}, str(foreign))
    with pytest.raises(CheckpointError, match="has no codec"):
        load_codec(str(foreign))
    mismatch = tmp_path / "mismatch.ckpt"  # tiny weights labelled as another preset
    export_checkpoint(model, {"name": "lic", "preset": "tiny", "args": {"M": 96, "groups": [16, 80]}}, str(mismatch))
    with pytest.raises(CheckpointError, match="do not fit model lic/tiny"):
        load_codec(str(mismatch))
    with pytest.raises(CheckpointError, match="not found"):
        load_codec(str(tmp_path / "missing.ckpt"))


def test_truncated_corrupted_and_forged_payloads(tiny_codec):
    data = tiny_codec.encode(synthetic_image(64, 64, seed=None))
    for n in (0, 5, len(data) // 2, len(data) - 1):
        with pytest.raises(BitstreamError):
            tiny_codec.decode(data[:n])
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 1
    with pytest.raises(BitstreamError, match="CRC"):
        tiny_codec.decode(bytes(flipped))
    # A forger who recomputes the CRC gets garbage pixels or a clean error, never a crash.
    c = unpack(data)
    rng = torch.Generator().manual_seed(0)
    for trial in range(6):
        streams = [
            bytes(torch.randint(0, 256, (len(s) if trial % 2 else 3,), generator=rng).tolist()) for s in c.streams
        ]
        forged = pack(c.header.kind, c.header.model_id, 64, 64, streams)
        try:
            out = tiny_codec.decode(forged)
            assert out.image.shape == (3, 64, 64) and torch.isfinite(out.image).all()
        except BitstreamError:
            pass
    wrong_count = pack(c.header.kind, c.header.model_id, 64, 64, [*c.streams, b"extra"])
    with pytest.raises(BitstreamError, match="streams"):
        tiny_codec.decode(wrong_count)


def test_bad_images_are_refused(tiny_codec):
    with pytest.raises(DataError):
        tiny_codec.encode(torch.rand(1, 3, 8, 8))
    with pytest.raises(DataError):
        tiny_codec.encode(torch.zeros(3, 20000, 2))


def test_a_checkpoint_without_a_part_names_the_part(tmp_path):
    """A hybrid exported before the perceptual decoder existed: the line says what is missing."""
    model, spec = tiny_model("hdc", seed=0, perceptual="latent")
    old = tmp_path / "old-hybrid.ckpt"
    export_checkpoint(model, {**spec, "args": {}}, str(old))  # labelled as today's default (with the decoder)
    with pytest.raises(CheckpointError, match=r"do not fit model hdc/tiny \(missing perceptual\.g_s\.\*") as err:
        load_codec(str(old))
    assert len(str(err.value).splitlines()) == 1
