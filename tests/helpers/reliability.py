"""Helpers of the reliability suite: per-case time and memory bounds, outcome counting,
running the real CLI in a subprocess, and reading what a run left behind."""

from __future__ import annotations

import ctypes
import faulthandler
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.helpers.configs import REPO

# Outcome summaries of the fuzz tests, printed at the end of the session (conftest) and
# written to $HDC_FUZZ_REPORT when set.
FUZZ_REPORTS: list[dict] = []


# ---- per-case bounds -------------------------------------------------------------------
class CaseTimeout(BaseException):
    """Raised by :func:`time_bound`; a BaseException so no ``except Exception`` swallows it."""


@contextmanager
def time_bound(seconds: float, what: str) -> Iterator[None]:
    """Fail a case that runs longer than ``seconds``.

    A SIGALRM timer interrupts Python code; a hang inside native code (where the handler
    cannot run) is caught by faulthandler's watchdog thread, which dumps every stack and
    ends the process after 3x the bound, so the suite fails instead of hanging.
    """

    def _alarm(signum, frame):
        raise CaseTimeout(f"{what}: still running after {seconds:.0f} s")

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    faulthandler.dump_traceback_later(3 * seconds, exit=True)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        faulthandler.cancel_dump_traceback_later()


_LIBC = ctypes.CDLL("libc.so.6") if sys.platform.startswith("linux") else None


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return int(re.search(rf"{field}:\s+(\d+)", f.read()).group(1))


def peak_rss_supported() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        _status_kib("VmHWM")
        return _LIBC is not None
    except OSError:
        return False


@contextmanager
def peak_rss(out: list[int]) -> Iterator[None]:
    """Appends to ``out`` the bytes by which the resident set grew at its peak inside the block.

    Free heap pages are handed back first (``malloc_trim``) and the kernel's high-water
    mark is reset (``clear_refs`` 5), so the peak counts memory actually touched by the
    block, not pages the allocator happened to keep from earlier cases.
    """
    _LIBC.malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    base = _status_kib("VmRSS")
    try:
        yield
    finally:
        out.append(max(0, _status_kib("VmHWM") - base) * 1024)


# ---- outcomes ----------------------------------------------------------------------------
def error_category(message: str, source: str | None = None) -> str:
    """A message with the file name, numbers and model ids folded, for counting outcomes."""
    if source and message.startswith(source + ": "):
        message = message[len(source) + 2 :]
    message = re.sub(r"\([^()]*\)", "(…)", message)
    message = re.sub(r"[0-9a-f]{16}", "<id>", message)
    message = re.sub(r"tag 0x[0-9a-f]+", "tag 0xH", message)
    message = re.sub(r"\d+", "N", message)
    return message[:90]


def check_one_line(message: str, source: str | None = None) -> None:
    assert message.strip() and "\n" not in message and len(message) < 400, f"not a one-line message: {message!r}"
    if source:
        assert message.startswith(source), f"message does not name {source!r}: {message!r}"


def one_error(argv, capture, *needles: str) -> str:
    """Run ``hdc ARGV`` in-process: it must exit 2 with exactly one ``error:`` line on stderr
    (captured by pytest's ``capsys`` or ``capfd``), one line long and holding every needle."""
    from hdc_lightning.cli import main

    code = main([str(a) for a in argv])
    err = capture.readouterr().err
    lines = [ln for ln in err.splitlines() if ": error: " in ln]
    assert code == 2 and len(lines) == 1, err[-2000:]
    check_one_line(lines[0])
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


class Tally:
    """Counts of outcomes and mutation kinds of one fuzz target."""

    def __init__(self, target: str):
        self.target = target
        self.clean = 0
        self.errors: Counter[str] = Counter()
        self.mutations: Counter[str] = Counter()
        self.failures: list[str] = []
        self.max_seconds = 0.0
        self.max_peak = 0
        self.extra: dict = {}

    @property
    def cases(self) -> int:
        return self.clean + sum(self.errors.values()) + len(self.failures)

    def report(self) -> dict:
        rep = {
            "target": self.target,
            "cases": self.cases,
            "clean_decodes": self.clean,
            "errors": sum(self.errors.values()),
            "failures": len(self.failures),
            "error_categories": dict(self.errors.most_common()),
            "mutations": dict(sorted(self.mutations.items())),
            "max_case_seconds": round(self.max_seconds, 3),
            **self.extra,
        }
        if self.max_peak:
            rep["max_case_peak_mib"] = round(self.max_peak / 2**20, 2)
        return rep

    def publish(self) -> dict:
        rep = self.report()
        FUZZ_REPORTS.append(rep)
        return rep


def write_fuzz_reports(path: str | Path) -> None:
    Path(path).write_text(json.dumps(FUZZ_REPORTS, indent=1))


# ---- the real CLI in a subprocess ---------------------------------------------------------
def cli_env() -> dict:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1", PYTHONWARNINGS="ignore")
    return env


def hdc_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "hdc_lightning", *map(str, args)]


def run_hdc(*args: str, timeout: float = 300, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(hdc_argv(*args), cwd=cwd, env=cli_env(), capture_output=True, text=True, timeout=timeout)


def stderr_tail(proc: subprocess.CompletedProcess | str, lines: int = 25) -> str:
    text = proc if isinstance(proc, str) else (proc.stderr or "") + (proc.stdout or "")
    return "\n".join(text.strip().splitlines()[-lines:])


# ---- what a run left behind ----------------------------------------------------------------
def ckpt_files(run_dir: Path) -> list[Path]:
    d = Path(run_dir) / "checkpoints"
    return sorted(d / n for n in os.listdir(d) if n.endswith(".ckpt")) if d.is_dir() else []


def done_step(run_dir: Path) -> int | None:
    p = Path(run_dir) / "done.json"
    return json.loads(p.read_text())["global_step"] if p.is_file() else None


def tb_scalars(run_dir: Path, tag: str) -> list[tuple[int, float]]:
    """(step, value) of ``tag`` in the run's TensorBoard events (all event files)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out: list[tuple[int, float]] = []
    tb = Path(run_dir) / "tb"
    for f in sorted(tb.glob("events.out.tfevents.*")):
        acc = EventAccumulator(str(f), size_guidance={"scalars": 0})
        acc.Reload()
        if tag in acc.Tags().get("scalars", []):
            out += [(e.step, e.value) for e in acc.Scalars(tag)]
    return out


def wait_for(predicate, timeout: float, every: float = 0.05, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def children_of(pid: int) -> list[int]:
    """Direct child process ids of ``pid`` (from /proc)."""
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry))
    return kids


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default
