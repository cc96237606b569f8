"""Embedded demo data built from photographs that ship inside pip packages.

``hdc demo-data data/demo`` writes ``train-000000..000003.tar`` (random rescaled
crops, 256–384 px, of six photographs, stored as raw ``rgb8`` pixels: the fastest
format to train from) and ``val/*.png`` (three *other* photographs, downscaled to
384 px) — offline, deterministic, in a few seconds. The photos are the
files bundled in the scikit-image and scikit-learn wheels (not the ones scikit-image
fetches on demand); they are located without importing either package.
"""

from __future__ import annotations

import importlib.util
import io
import math
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hdc_lightning.data.images import RAW_EXT, encode_raw
from hdc_lightning.data.shards import DEFAULT_FORMAT, FORMATS, ShardSink
from hdc_lightning.errors import DataError
from hdc_lightning.fileio import check_output, write_bytes, write_text

# (package, file inside it, licence) — all natural RGB photographs.
TRAIN_PHOTOS = (
    ("skimage", "data/astronaut.png", "public domain (NASA)"),
    ("skimage", "data/coffee.png", "CC0 (Rachel Michetti)"),
    ("skimage", "data/motorcycle_left.png", "Middlebury 2014 stereo benchmark"),
    ("skimage", "data/motorcycle_right.png", "Middlebury 2014 stereo benchmark"),
    ("skimage", "data/hubble_deep_field.jpg", "public domain (NASA)"),
    ("sklearn", "datasets/images/china.jpg", "CC BY 2.0 (danielbuechele, Flickr)"),
)
VAL_PHOTOS = (
    ("skimage", "data/chelsea.png", "CC0 (Stefan van der Walt)"),
    ("skimage", "data/rocket.jpg", "public domain (SpaceX)"),
    ("sklearn", "datasets/images/flower.jpg", "CC BY 2.0 (vultilion, Flickr)"),
)

NUM_SHARDS = 4
SOURCES = "SOURCES.txt"  # where each photo comes from, with its licence
CROPS_PER_PHOTO = 20
CROP_RANGE = (256, 384)
VAL_SIDE = 384
SEED = 0


@dataclass
class DemoReport:
    shards: list[Path]
    train_samples: int
    val_images: list[Path]
    pattern: str

    def summary(self) -> str:
        return (
            f"demo data: {self.train_samples} training crops in {len(self.shards)} shards ({self.pattern}), "
            f"{len(self.val_images)} validation images in {self.val_images[0].parent}"
        )


def bundled_photo(package: str, relpath: str) -> Path:
    """Path of a file shipped inside an installed package (the package is not imported)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"demo data needs the {package!r} package (pip install scikit-image scikit-learn)")
    path = Path(list(spec.submodule_search_locations)[0]) / relpath
    if not path.is_file():
        raise DataError(f"demo photo {relpath!r} is not bundled in the installed {package!r} package ({path})")
    return path


def _open_rgb(package: str, relpath: str):
    from PIL import Image

    with Image.open(bundled_photo(package, relpath)) as im:
        return im.convert("RGB")


def _png(image) -> bytes:
    buf = io.BytesIO()
    image.info.pop("icc_profile", None)  # some bundled profiles make libpng warn on every decode
    image.save(buf, format="PNG")
    return buf.getvalue()


def _raw(image) -> bytes:
    return encode_raw(np.asarray(image))


def _random_views(photo, stem: str, n: int, rng: random.Random):
    """``n`` random (scale, crop) views of ``photo``: crops of 256–384 px per side from the
    photo rescaled by a log-uniform factor between "crop just fits" and 1."""
    from PIL import Image

    for k in range(n):
        w, h = (rng.randint(*CROP_RANGE) for _ in range(2))
        s_min = max(w / photo.width, h / photo.height)
        scale = 1.0 if s_min >= 1 else math.exp(rng.uniform(math.log(s_min), 0.0))
        size = (max(w, round(photo.width * scale)), max(h, round(photo.height * scale)))
        scaled = photo if size == photo.size else photo.resize(size, Image.Resampling.LANCZOS)
        left, top = rng.randint(0, scaled.width - w), rng.randint(0, scaled.height - h)
        yield f"{stem}_{k:02d}", scaled.crop((left, top, left + w, top + h))


def build_demo_data(out_dir: str | Path = "data/demo", fmt: str = DEFAULT_FORMAT, force: bool = False) -> DemoReport:
    """Write the demo shards (``fmt``: raw pixels or PNG, the same pixels either way) and
    the validation images into ``out_dir``, replacing files of those names only if hdc wrote
    them (or with ``force``)."""
    from PIL import Image

    if fmt not in FORMATS:
        raise DataError(f"shard format {fmt!r} is not one of {', '.join(FORMATS)}")
    encode, ext = (_png, "png") if fmt == "png" else (_raw, RAW_EXT)
    out = Path(out_dir)
    shard_paths = [out / f"train-{k:06d}.tar" for k in range(NUM_SHARDS)]
    val_names = [out / "val" / f"{Path(relpath).stem}.png" for _, relpath, _ in VAL_PHOTOS]
    for path in (*shard_paths, *val_names, out / SOURCES):
        check_output(path, force=force)  # before anything is written
    rng = random.Random(SEED)
    samples = []
    for package, relpath, _ in TRAIN_PHOTOS:
        photo = _open_rgb(package, relpath)
        samples += [(key, encode(view)) for key, view in _random_views(photo, Path(relpath).stem, CROPS_PER_PHOTO, rng)]
    rng.shuffle(samples)  # every shard mixes all photos
    with ShardSink(out, "train", max_samples=math.ceil(len(samples) / NUM_SHARDS), max_bytes=1 << 40) as sink:
        for key, payload in samples:
            sink.write(key, ext, payload)

    val_paths, sources = [], ["# Demo data: photographs bundled in pip packages (package/file: licence)"]
    for package, relpath, _ in VAL_PHOTOS:
        photo = _open_rgb(package, relpath)
        scale = min(1.0, VAL_SIDE / max(photo.size))
        if scale < 1.0:
            photo = photo.resize((round(photo.width * scale), round(photo.height * scale)), Image.Resampling.LANCZOS)
        path = out / "val" / f"{Path(relpath).stem}.png"
        val_paths.append(write_bytes(path, _png(photo)))
    for split, photos in (("train", TRAIN_PHOTOS), ("val", VAL_PHOTOS)):
        sources += [f"{split}: {package}/{relpath}: {licence}" for package, relpath, licence in photos]
    write_text(out / SOURCES, "\n".join(sources) + "\n")
    pattern = str(out / f"train-{{000000..{len(sink.paths) - 1:06d}}}.tar")
    return DemoReport(sink.paths, len(samples), val_paths, pattern)
