"""The MLIC++ variant: its training forward, its exact coding path, and the exact operations."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hdc_lightning.codec import export_checkpoint, load_codec
from hdc_lightning.models.contracts import LICStream
from hdc_lightning.models.lic import estimated_bits
from hdc_lightning.models.mlicpp import checkerboard as ckbd
from hdc_lightning.models.mlicpp.ops import FLOAT, PROB_BITS, ExactLayerNorm, ExactOps, build_tables
from tests.helpers.images import synthetic_image
from tests.helpers.models import tiny_model
from tests.helpers.published_mlicpp import randomise


@pytest.fixture(scope="module")
def tiny():
    model, spec = tiny_model("mlicpp")
    randomise(model, 1)
    model.update(force=True)
    return model, spec


def test_contract_and_training_forward(tiny):
    model, _ = tiny
    assert isinstance(model, LICStream)
    x = synthetic_image(70, 100, seed=1)[None]
    model.train()
    try:
        out = model(x)
        (estimated_bits(out.likelihoods).sum() + F.mse_loss(out.x_hat, x)).backward()
    finally:
        model.eval()
    assert out.x_hat.shape == x.shape and out.y_hat.shape == (1, 64, 8, 8)
    untouched = [n for n, p in model.named_parameters() if p.grad is None and not n.endswith("quantiles")]
    model.zero_grad(set_to_none=True)
    assert not untouched, f"parameters outside the loss's graph: {untouched[:4]}"


def test_coding_round_trip(tiny):
    model, _ = tiny
    x = synthetic_image(70, 100, seed=2)[None]
    c = model.compress(x)
    d = model.decompress(c.strings, c.shape)
    assert torch.equal(c.y_hat, d.y_hat)
    assert d.x_hat.shape == x.shape and torch.isfinite(d.x_hat).all()
    with torch.no_grad():
        ref = model(x).y_hat
    # the exact entropy side moves a mean by grid steps: a symbol may flip, most do not
    assert (d.y_hat - ref).abs().lt(1e-2).double().mean() > 0.9
    assert c.y_hat.ne(0).double().mean() > 0.2  # not a vacuous comparison
    with torch.no_grad():  # a damaged stream decodes to something else, never the same latent
        broken = bytearray(c.strings[0][0])
        broken[len(broken) // 2] ^= 0xFF
        assert not torch.equal(model.decompress([[bytes(broken)]], c.shape).y_hat, c.y_hat)


def test_tables_are_stored_and_loaded(tiny, tmp_path):
    model, spec = tiny
    path = tmp_path / "m.ckpt"
    export_checkpoint(model, spec, str(path), half=True)
    codec = load_codec(str(path))
    assert torch.equal(codec.model.gelu_table, model.gelu_table)  # int tables survive --half
    image = synthetic_image(64, 64, seed=3)
    assert load_codec(str(path)).decode(codec.encode(image)).image.shape == image.shape
    unbuilt, _ = tiny_model("mlicpp")  # as a training checkpoint saved before any update()
    state = {f"model.{k}": v for k, v in unbuilt.state_dict().items()}
    torch.save({"state_dict": state, "hyper_parameters": {"cfg": {"model": spec}}}, tmp_path / "raw.ckpt")
    with pytest.warns(UserWarning, match="stores no entropy tables"):
        assert load_codec(str(tmp_path / "raw.ckpt")).model.exp_table.numel() > 0


def test_checkerboard_halves():
    y = torch.arange(2 * 3 * 4 * 6, dtype=torch.float64).reshape(2, 3, 4, 6)
    for anchor in (True, False):
        half = ckbd.squeeze(y, anchor)
        assert half.shape == (2, 3, 4, 3)
        assert torch.equal(ckbd.unsqueeze(half, anchor), ckbd.keep(y, anchor))
    assert torch.equal(ckbd.keep(y, True) + ckbd.keep(y, False), y)
    assert bool(ckbd.anchor_map(4, 6)[0, 1]) and not bool(ckbd.anchor_map(4, 6)[0, 0])


def test_exact_operations_follow_the_float_ones():
    ops = ExactOps(build_tables())
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 7, 300, generator=g, dtype=torch.float64) * 3
    x[0, 0, :4] = torch.tensor([-9.0, 8.0, 20.0, -30.0])  # outside the tables
    step = 2.0**-12
    assert (ops.gelu(x) - F.gelu(x)).abs().max() <= 1.5 * step  # input and output each rounded
    assert (ops.tanh_half(x) - 0.5 * torch.tanh(x)).abs().max() <= step
    for dim in (1, 2):
        p = ops.softmax(x, dim)
        assert (p - F.softmax(x, dim)).abs().max() <= 2 * step  # the input is rounded to the grid first
        assert torch.equal(p, torch.floor(p * 2.0**PROB_BITS) / 2.0**PROB_BITS)  # on the probability grid
    norm = torch.nn.LayerNorm(300, dtype=torch.float64)
    with torch.no_grad():
        norm.weight.normal_(1, 0.2, generator=g)
        norm.bias.normal_(0, 0.1, generator=g)
        assert (ExactLayerNorm(norm)(x) - norm(x)).abs().max() <= 4 * step
    assert FLOAT.exact is False and ops.exact is True


def test_exact_operations_ignore_summation_order():
    """What makes them portable: the same result whatever order a kernel sums in."""
    ops = ExactOps(build_tables())
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 5, 257, generator=g, dtype=torch.float64) * 4
    perm = torch.randperm(257, generator=g)
    assert torch.equal(ops.softmax(x, 2)[..., perm], ops.softmax(x[..., perm], 2))
    a = ops.softmax(x, 2)
    v = ops.bias(torch.randn(3, 257, 9, generator=g, dtype=torch.float64))
    assert torch.equal(ops.matmul(a, v), ops.matmul(a[..., perm], v[:, perm]))
    norm = ExactLayerNorm(torch.nn.LayerNorm(257, dtype=torch.float64))
    assert torch.equal(norm(x)[..., perm], norm(x[..., perm]))
    tables = build_tables()
    assert all(torch.equal(tables[k], v) for k, v in build_tables().items())


def test_the_hybrid_takes_it_as_its_lic_stream(tmp_path):
    from hdc_lightning.registry import build_spec

    spec = {"name": "hdc", "preset": "tiny", "args": {"parts": {"lic": {"name": "mlicpp"}}}}
    torch.manual_seed(0)
    model = build_spec("model", spec).eval()
    assert type(model.lic).__name__ == "MLICPP"
    export_checkpoint(model, spec, str(tmp_path / "hdc.ckpt"))
    codec = load_codec(str(tmp_path / "hdc.ckpt"))
    image = synthetic_image(64, 96, seed=7)
    decoded = codec.decode(codec.encode(image))
    assert decoded.image.shape == image.shape and decoded.stream_bytes["yz"] > 0
