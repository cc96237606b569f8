"""Encode under one torch kernel set, decode under every other, in subprocesses.

Every kernel set this CPU can be forced into (``ATEN_CPU_CAPABILITY`` × ``ONEDNN_MAX_CPU_ISA``)
decodes, at 1 and 2 threads, the files written under the generic and under the best set;
every discrete quantity must be identical (the LIC latent, the sent mask and indices, T's
completed index map). ``benchmarks/portability.py`` prints the same matrix for a folder.
"""

from __future__ import annotations

from PIL import Image

from hdc_lightning.codec.imageio import to_uint8
from hdc_lightning.evaluation.portability import compare, kernel_sets, run_matrix
from tests.helpers.images import synthetic_image


def test_every_kernel_set_decodes_every_file_alike(tmp_path):
    image = tmp_path / "img.png"
    Image.fromarray(to_uint8(synthetic_image(80, 112, seed=5))).save(image)
    sets = kernel_sets()
    encoders = [sets[0], sets[-1]]  # generic and the machine's best
    matrix = run_matrix("small", [str(image)], tmp_path / "m", sets, encoders=encoders, timeout=600)
    cells = compare(matrix, tmp_path / "m")
    assert len(cells) == len(sets) * len(encoders)
    bad = {k: c["discrete"] for k, c in cells.items() if c["discrete"]}
    assert not bad, f"discrete quantities differ between kernel sets: {bad}"
    for c in cells.values():  # the outputs differ at most by float noise
        for share, biggest in c["pixels"].values():
            assert biggest <= 2 and share <= 1e-3


def test_mlicpp_files_decode_alike_under_every_kernel_set(tmp_path):
    """MLIC++'s entropy side (attention, layer norms, GELU, LRP) in exact fixed point: the
    latent a file decodes to is the same under the generic and the best kernels."""
    import torch

    from hdc_lightning.codec import export_checkpoint
    from tests.helpers.models import tiny_model
    from tests.helpers.published_mlicpp import randomise

    model, spec = tiny_model("mlicpp", seed=3)
    randomise(model, 3)
    with torch.no_grad():
        model.update(force=True)
    ckpt = tmp_path / "mlicpp.ckpt"
    export_checkpoint(model, spec, str(ckpt))
    image = tmp_path / "img.png"
    Image.fromarray(to_uint8(synthetic_image(80, 112, seed=6))).save(image)
    sets = kernel_sets()
    sets = [sets[0], sets[-1]]  # generic and the machine's best
    matrix = run_matrix(str(ckpt), [str(image)], tmp_path / "m", sets, encoders=sets, timeout=600)
    cells = compare(matrix, tmp_path / "m")
    assert len(cells) == 4
    bad = {k: c["discrete"] for k, c in cells.items() if c["discrete"]}
    assert not bad, f"the decoded latent differs between kernel sets: {bad}"
