"""Shared helpers of the test suite (and of a few benchmark scripts); no fixtures here.

Import them by their package path, ``from tests.helpers.images import synthetic_image``;
fixtures stay in the ``conftest.py`` files, which may import from here.

- ``images``: the one synthetic-image generator (:func:`~tests.helpers.images.synthetic_image`)
  and writers of image files and PNG bytes.
- ``datasets``: tar files, image shards and the tiny train/val dataset of the fit tests.
- ``models``: randomly initialised tiny models and their checkpoints.
- ``configs``: the one tiny-config builder (:func:`~tests.helpers.configs.fit_overrides`,
  :func:`~tests.helpers.configs.tiny_config`) and repository paths.
- ``reliability``: per-case time/memory bounds, fuzz outcome counts, the CLI in a subprocess.
- ``vq_toy``: the VQ phase on in-memory toy data; also a script for the DDP test.
"""
