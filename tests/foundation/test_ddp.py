"""A phase on 2 CPU processes (gloo): ranks see different data, the checkpoint resumes."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hdc_lightning.checkpoints import safe_load
from tests.helpers.images import save_image

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    from hdc_lightning.data import write_shards

    root = tmp_path_factory.mktemp("ddpdata")
    rng = np.random.default_rng(0)
    (root / "src").mkdir()
    for i in range(16):
        save_image(root / "src" / f"{i:02d}.png", 80, 80, seed=rng)  # one noise stream for all 16
    return str(write_shards(root / "src", root / "shards", max_samples=4, progress=False).pattern)


def _run(shards, tmp_path, steps, resume):
    args = [
        f"run.root={tmp_path}",
        "run.name=ddp",
        f"run.resume={str(resume).lower()}",
        "run.ckpt_every_n_steps=2",
        "run.rdp_figure=false",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.strategy=ddp",
        f"trainer.max_steps={steps}",
        "trainer.val_check_interval=1000",
        "trainer.limit_val_batches=0",
        "trainer.enable_progress_bar=false",
        f"data.train.shards={shards}",
        "data.train.crop=64",
        "data.train.batch_size=2",
        "data.train.num_workers=0",
        "data.train.batches_per_epoch=3",
        "data.val.folder=null",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, str(HERE / "ddp_probe.py"), str(REPO / "experiments/lic/tiny.yaml"), str(tmp_path), *args]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.mark.ddp
def test_two_ranks_see_different_data_and_resume(shards, tmp_path):
    _run(shards, tmp_path, steps=4, resume=False)
    seen = [dict(line.split() for line in (tmp_path / f"digests-rank{r}.txt").read_text().splitlines()) for r in (0, 1)]
    assert len(seen[0]) == len(seen[1]) == 4  # same number of batches on both ranks: no hang
    assert not set(seen[0].values()) & set(seen[1].values()), "both ranks trained on identical batches"
    ckpt = tmp_path / "ddp" / "checkpoints" / "last.ckpt"
    assert safe_load(ckpt)["global_step"] == 4

    _run(shards, tmp_path, steps=6, resume=True)
    assert safe_load(ckpt)["global_step"] == 6
    lines = (tmp_path / "digests-rank1.txt").read_text().splitlines()
    assert [int(line.split()[0]) for line in lines][-2:] == [4, 5]  # rank 1 continued from step 4
