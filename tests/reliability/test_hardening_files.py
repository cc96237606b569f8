"""Issue 14, cases 2, 4, 7, 8 and the file messages of 11: no command writes over its input
or a file it did not make, inputs that are not regular files are refused before reading,
reads and the stream guard are bounded, and every failure is one ``error:`` line."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import torch
from PIL import Image

from hdc_lightning.cli import main
from hdc_lightning.codec.container import MAX_FILE_BYTES, pack
from hdc_lightning.codec.lic import MAX_STREAM_BYTES_PER_SYMBOL, guard_streams
from hdc_lightning.errors import BitstreamError
from hdc_lightning.fileio import UnreadableFile, read_regular
from tests.helpers.configs import REPO
from tests.helpers.images import save_image
from tests.helpers.reliability import one_error, peak_rss, peak_rss_supported, time_bound


@pytest.fixture()
def photo(tmp_path):
    return save_image(tmp_path / "photo.png", 48, 64, seed=0)


# ---- case 2: outputs never replace inputs or foreign files -----------------------------------
def test_default_names_keep_the_original_image(photo, lic_ckpt, capsys):
    original = photo.read_bytes()
    assert main(["compress", str(photo), "--ckpt", str(lic_ckpt)]) == 0
    assert main(["decompress", str(photo.with_suffix(".hdc")), "--ckpt", str(lic_ckpt)]) == 0
    assert photo.read_bytes() == original
    decoded = photo.with_name("photo.decoded.png")
    assert decoded.is_file() and str(decoded) in capsys.readouterr().out
    # Rerunning both replaces only what hdc wrote itself: no --force needed.
    assert main(["compress", str(photo), "--ckpt", str(lic_ckpt)]) == 0
    assert main(["decompress", str(photo.with_suffix(".hdc")), "--ckpt", str(lic_ckpt)]) == 0


def test_compress_never_writes_over_its_input(photo, lic_ckpt, capsys):
    original = photo.read_bytes()
    for extra in ([], ["--force"]):
        one_error(["compress", photo, "-o", photo, "--ckpt", lic_ckpt, *extra], capsys, "is also an input")
    assert photo.read_bytes() == original


def test_an_existing_foreign_file_needs_force(photo, lic_ckpt, tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    one_error(["compress", photo, "-o", notes, "--ckpt", lic_ckpt], capsys, "pass --force")
    assert notes.read_text() == "mine"
    hdc = tmp_path / "p.hdc"
    assert main(["compress", str(photo), "-o", str(hdc), "--ckpt", str(lic_ckpt)]) == 0
    other = tmp_path / "other.png"
    Image.new("RGB", (4, 4)).save(other)
    one_error(["decompress", hdc, "-o", other, "--ckpt", lic_ckpt], capsys, "pass --force")
    one_error(["decompress", hdc, "-o", hdc, "--ckpt", lic_ckpt, "--force"], capsys, "is also an input")
    assert main(["decompress", str(hdc), "-o", str(other), "--ckpt", str(lic_ckpt), "--force"]) == 0


# ---- case 4 and 11: inputs that are not regular files, bounded reads -------------------------
def _fifo(tmp_path):
    path = tmp_path / "pipe.hdc"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize(
    "kind, needle",
    [
        ("fifo", "named pipe"),
        ("device", "is a device"),
        ("directory", "is a directory"),
        ("loop", "cannot open"),
        ("empty", "empty file"),
    ],
)
@pytest.mark.parametrize("command", ["decompress", "compress"])
def test_non_regular_inputs_are_refused_at_once(tmp_path, lic_ckpt, capfd, kind, needle, command):
    if kind == "fifo":
        path = _fifo(tmp_path)
    elif kind == "device":
        path = "/dev/zero"
    elif kind == "directory":
        path = tmp_path
    elif kind == "loop":
        path = tmp_path / "loop.png"
        os.symlink(path, path)
    else:
        path = tmp_path / "empty.hdc"
        path.write_bytes(b"")
    if kind == "empty" and command == "compress":
        needle = "not a readable image (empty file)"
    with time_bound(20, f"{command} of a {kind}"):
        one_error([command, path, "--ckpt", lic_ckpt, "-o", tmp_path / "out.png"], capfd, str(path), needle)


def test_reads_stop_at_the_limit_whatever_st_size_says():
    assert os.stat("/proc/self/maps").st_size == 0  # a regular file that reports no size
    with pytest.raises(UnreadableFile, match="larger than the 64-byte limit"):
        read_regular("/proc/self/maps", 64)


def test_the_stream_guard_is_bounded_by_the_symbol_count():
    n = 1000
    with pytest.raises(BitstreamError, match="more than a valid stream can hold"):
        guard_streams([b"\xff" * (MAX_STREAM_BYTES_PER_SYMBOL * n + 17)], [n], "forged.hdc")
    (padded,) = guard_streams([b"\xff" * (MAX_STREAM_BYTES_PER_SYMBOL * n + 16)], [n])
    assert len(padded) <= 120 * n + 512


def test_real_streams_are_far_below_the_per_symbol_cap(lic_ckpt):
    """Noise is the hardest image to code; even its stream stays under the cap."""
    from hdc_lightning.codec import load_codec
    from hdc_lightning.codec.container import unpack

    codec = load_codec(lic_ckpt)
    noise = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0))
    c = unpack(codec.encode(noise))
    (n,) = codec.model.symbols_per_stream(64, 64)
    assert len(c.streams[0]) < n  # well under one byte per symbol, the cap is seven


@pytest.mark.skipif(not peak_rss_supported(), reason="needs /proc/self/clear_refs")
def test_a_forged_file_at_the_size_limit_costs_no_guard_memory(lic_ckpt, tmp_path, capsys):
    """A 256 MiB forged payload behind a valid header is refused by the guard's length check
    before any padding is allocated: the peak stays near the file's own copies."""
    from hdc_lightning.codec import load_codec

    codec = load_codec(lic_ckpt)
    data = pack(1, codec.model_id.digest, 1024, 2048, [b"\xff" * (MAX_FILE_BYTES - 64)])
    assert len(data) <= MAX_FILE_BYTES
    peaks: list[int] = []
    with peak_rss(peaks), pytest.raises(BitstreamError, match="more than a valid stream can hold"):
        codec.decode(data, source="forged.hdc")
    assert peaks[0] < 3 * MAX_FILE_BYTES, f"peak {peaks[0] / 2**20:.0f} MiB"


# ---- cases 7, 8, 11: one error line, device errors, messages ----------------------------------
def test_one_stderr_line_per_failure_with_warnings_on(tmp_path):
    """No PYTHONWARNINGS here: library deprecation notices at import must not show."""
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    proc = subprocess.run(
        [sys.executable, "-m", "hdc_lightning", "compress", str(junk), "--ckpt", "x.ckpt"],
        cwd=REPO,
        env={**env, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "BytesIO" not in proc.stderr and "unknown image format" in proc.stderr


@pytest.mark.parametrize("device, needle", [("bogus", "not a device name"), ("cuda:99", "CUDA device")])
def test_device_errors_are_one_line(photo, lic_ckpt, tmp_path, capsys, device, needle):
    one_error(["compress", photo, "--ckpt", lic_ckpt, "-o", tmp_path / "d.hdc", "--device", device], capsys, needle)


def test_unclear_messages_are_clear(photo, lic_ckpt, tmp_path, capsys):
    one_error(
        ["compress", photo, "--ckpt", photo, "-o", tmp_path / "a.hdc"],
        capsys,
        "not a readable checkpoint (not an archive written by torch.save)",
    )
    one_error(["compress", photo, "--ckpt", lic_ckpt, "-o", tmp_path], capsys, "is a directory")
    hdc = tmp_path / "p.hdc"
    assert main(["compress", str(photo), "-o", str(hdc), "--ckpt", str(lic_ckpt)]) == 0
    one_error(["decompress", hdc, "--ckpt", lic_ckpt, "-o", tmp_path / "fig.xyz"], capsys, "unknown image file type")
    one_error(["decompress", hdc, "--ckpt", lic_ckpt, "-o", tmp_path], capsys, "is a directory")


def test_help_has_no_empty_or_doubled_defaults():
    from hdc_lightning.cli import build_parser

    sub = build_parser()._subparsers._group_actions[0].choices
    for name, parser in sub.items():
        text = " ".join(parser.format_help().split())
        assert "(default: None)" not in text and "(default: True)" not in text, name
        assert not re.search(r"default[^()]*\)\s*\(default:", text), name  # a help naming its default gets no second
