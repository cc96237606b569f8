"""Corrupt data: training skips and counts broken samples and finishes; the image decoder
never crashes the process; ``hdc shards`` and ``hdc eval`` name unreadable files and go on.

Broken samples used here: a zero-byte image, a text file named ``.png``, a sample with
no image member, a raw-pixel payload cut short, a truncated tar member, a PNG with one flipped bit in its pixel data,
and a 20000x20000 TIFF (a decompression bomb of 0.6 MB).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from hdc_lightning.checkpoints import safe_load
from hdc_lightning.data.images import encode_raw
from tests.helpers.configs import REPO, TINY_LIC, fit_overrides
from tests.helpers.datasets import write_tar
from tests.helpers.images import image_png
from tests.helpers.reliability import cli_env, done_step, run_hdc, stderr_tail, tb_scalars


def flipped_png(seed: int = 0) -> bytes:
    """A PNG whose chunk structure is intact but whose compressed pixels carry one flipped bit."""
    data = bytearray(image_png(48, 40, seed))
    data[len(data) // 2] ^= 0x10
    return bytes(data)


def bomb_tiff() -> bytes:
    """A 20000x20000 deflated TIFF: 0.6 MB on disk, 400 Mpx once decoded."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (20000, 20000)).save(buf, format="TIFF", compression="tiff_deflate")
    return buf.getvalue()


def _good(prefix: str, n: int, seed: int) -> list[tuple[str, bytes]]:
    return [(f"{prefix}{i}.png", image_png(72, 72, seed + i)) for i in range(n)]


def _corrupt_shards(folder: Path) -> tuple[str, list[str]]:
    """Two shards: 9 good samples and 5 broken ones per pass; returns (pattern, broken keys)."""
    write_tar(
        folder / "bad-0.tar",
        [
            *_good("a", 3, 0),
            ("zerobyte.png", b""),
            ("textpayload.png", b"this is not an image, just text"),
            ("noimage.txt", b"a sample with no image member"),
            ("shortraw.rgb8", encode_raw(np.zeros((72, 72, 3), np.uint8))[:-7]),  # raw pixels, cut short
            *_good("b", 3, 10),
        ],
    )
    write_tar(folder / "bad-1.tar", [*_good("c", 3, 20), ("cutmember.png", image_png(72, 72, 99))])
    whole = (folder / "bad-1.tar").read_bytes()
    # cut inside the last member's data: tar header intact, payload short
    cut = whole.rfind(b"cutmember.png") + 512 + 100
    (folder / "bad-1.tar").write_bytes(whole[:cut])
    return str(folder / "bad-{0..1}.tar"), ["zerobyte", "textpayload", "noimage", "shortraw", "cutmember"]


def _fit(tmp_path: Path, shards: str, name: str, steps: int, *extra: str) -> subprocess.CompletedProcess:
    over = fit_overrides(tmp_path / "runs", shards, name=name, max_steps=steps, every=steps)
    return run_hdc("fit", TINY_LIC, *over, *extra, timeout=600)


def test_fit_skips_counts_and_names_corrupt_samples(tmp_path):
    shards, broken = _corrupt_shards(tmp_path)
    steps = 12  # 24 crops: between 2 and 3 passes over the 9 good samples
    proc = _fit(tmp_path, shards, "corrupt", steps, "data.train.resampled=false", "data.train.shuffle_buffer=0")
    assert proc.returncode == 0, stderr_tail(proc)
    run_dir = tmp_path / "runs" / "corrupt"
    assert done_step(run_dir) == steps
    skipped = safe_load(run_dir / "checkpoints" / "last.ckpt")["hdc"]["skipped_samples"]
    assert 2 * len(broken) <= skipped <= 3 * len(broken), skipped  # every pass meets all of them
    print(
        f"corrupt data: {steps} steps finished, {skipped} broken samples skipped and counted "
        f"({len(broken)} kinds, each met every pass)"
    )
    logged = tb_scalars(run_dir, "data/skipped_samples")
    assert logged and logged[-1][1] == skipped  # the TensorBoard curve ends at the same count
    out = proc.stderr + proc.stdout
    for key in broken:  # each broken sample is named in the warnings
        assert key in out, f"{key} not reported:\n{stderr_tail(out)}"


def test_fit_survives_damaged_image_bytes(tmp_path):
    write_tar(
        tmp_path / "dmg-0.tar",
        [*_good("g", 4, 0), ("bitflip.png", flipped_png()), ("bomb.tif", bomb_tiff()), *_good("h", 4, 10)],
    )
    proc = _fit(
        tmp_path, str(tmp_path / "dmg-0.tar"), "damaged", 6, "data.train.resampled=false", "data.train.shuffle_buffer=0"
    )
    assert proc.returncode == 0, f"exit status {proc.returncode}:\n{stderr_tail(proc)}"
    skipped = safe_load(tmp_path / "runs" / "damaged" / "checkpoints" / "last.ckpt")["hdc"]["skipped_samples"]
    assert skipped >= 2


_DECODER_FUZZ = textwrap.dedent("""
    import io, random, sys
    import numpy as np
    from PIL import Image
    from hdc_lightning.data.images import CorruptImage, decode_raw, decode_rgb, encode_raw
    cases, seed = int(sys.argv[1]), int(sys.argv[2])
    arr = np.random.default_rng(0).integers(0, 256, (48, 40, 3), dtype=np.uint8)
    sources = {}
    for fmt in ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF"):
        buf = io.BytesIO(); Image.fromarray(arr).save(buf, format=fmt); sources[fmt] = buf.getvalue()
    sources["RAW"] = encode_raw(arr)
    extra = [("bomb", bytes.fromhex(sys.stdin.read().strip()))]
    def cases_of():
        yield from extra
        for i in range(cases):
            rng = random.Random(f"{seed}:{i}")
            fmt = rng.choice(sorted(sources)); d = bytearray(sources[fmt]); op = rng.randrange(4)
            if op == 0: d[rng.randrange(len(d))] ^= 1 << rng.randrange(8)
            elif op == 1: d = d[: rng.randrange(len(d))]
            elif op == 2:
                p = rng.randrange(len(d)); d[p:p] = rng.randbytes(rng.randint(1, 8))
            else:
                for _ in range(4): d[rng.randrange(len(d))] = rng.randrange(256)
            yield f"{fmt} case {i} op {op}", bytes(d)
    counts = {"decoded": 0, "CorruptImage": 0}
    for name, data in cases_of():
        print("CASE", name, flush=True)
        try:
            x = decode_raw(data) if name.startswith("RAW") else decode_rgb(data)
            assert x.ndim == 3 and x.shape[0] == 3, x.shape
            counts["decoded"] += 1
        except CorruptImage:
            counts["CorruptImage"] += 1
        except BaseException as e:
            counts["escaped"] = counts.get("escaped", 0) + 1
            print("ESCAPED", name, type(e).__name__, str(e)[:150], flush=True)
    print("COUNTS", counts)
    sys.exit(3 if counts.get("escaped") else 0)
""")


def test_image_decoder_never_crashes_on_corrupt_bytes():
    """decode_rgb (training shards, validation and `hdc eval` folders) on damaged PNG, JPEG,
    WebP, BMP, TIFF and GIF bytes, and decode_raw on damaged raw-pixel payloads: an image or
    CorruptImage, never a crash of the process.
    Runs in a subprocess so that a crash in native code fails this test, not the suite."""
    cases = int(os.environ.get("HDC_IMAGE_FUZZ_CASES", "300"))
    proc = subprocess.run(
        [sys.executable, "-c", _DECODER_FUZZ, str(cases), "0"],
        input=bomb_tiff().hex(),
        cwd=REPO,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = proc.stdout.splitlines()
    escaped = [ln for ln in lines if ln.startswith("ESCAPED")]
    crashed_at = (
        "" if "COUNTS" in proc.stdout else ([ln for ln in lines if ln.startswith("CASE")][-1:] or ["(start)"])[0]
    )
    assert proc.returncode == 0, (
        f"decoder process ended with status {proc.returncode}"
        + (f", crashed at {crashed_at}" if crashed_at else "")
        + f"; {len(escaped)} non-CorruptImage errors: "
        + " | ".join(escaped[:3])
        + "\n"
        + proc.stderr[-1500:]
    )
    assert "COUNTS" in proc.stdout


def _bad_files(folder: Path) -> list[str]:
    """Unreadable files next to good ones; returns their names."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(2):
        (folder / f"good{i}.png").write_bytes(image_png(64, 64, i))
    (folder / "zerobyte.png").write_bytes(b"")
    (folder / "textpayload.png").write_text("not an image")
    (folder / "bitflip.png").write_bytes(flipped_png())
    (folder / "bomb.tif").write_bytes(bomb_tiff())
    (folder / "dangling.png").symlink_to(folder / "missing-target.png")
    os.mkfifo(folder / "fifo.png")  # opening it for reading would wait for a writer forever
    return ["zerobyte.png", "textpayload.png", "bitflip.png", "bomb.tif", "dangling.png", "fifo.png"]


def test_shards_names_unreadable_files_and_goes_on(tmp_path):
    bad = _bad_files(tmp_path / "src")
    try:
        proc = run_hdc("shards", tmp_path / "src", tmp_path / "out", "--quiet", timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("`hdc shards` hung on a folder with a named pipe (fifo.png)")
    assert proc.returncode == 0, stderr_tail(proc)
    assert "wrote 2 images" in proc.stdout, proc.stdout
    for name in bad:
        assert name in proc.stdout + proc.stderr, f"{name} not reported:\n{proc.stdout}"


def test_eval_names_unreadable_images_and_goes_on(tmp_path, lic_ckpt):
    bad = _bad_files(tmp_path / "imgs")
    try:
        proc = run_hdc(
            "eval",
            lic_ckpt,
            "--data",
            tmp_path / "imgs",
            "-o",
            tmp_path / "out",
            "--baselines",
            "none",
            "--no-lpips",
            "--no-dists",
            "--no-fid",
            "--no-progress",
            timeout=300,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("`hdc eval` hung on a folder with unreadable files")
    assert proc.returncode == 0, f"exit status {proc.returncode}:\n{stderr_tail(proc)}"
    for name in bad:
        assert name in proc.stderr + proc.stdout, f"{name} not reported:\n{stderr_tail(proc)}"
    results = list((tmp_path / "out").rglob("*.json"))
    assert results and any("good0" in p.read_text() for p in results)
