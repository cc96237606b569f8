"""Makes tests/vq/vq_toy.py importable; runs the VQ tests single-threaded.

One intra-op thread: on a shared 2-core machine, 2 threads ran these small convolutions
10-15x slower (OpenMP threads waiting on each other) than 1.
"""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
