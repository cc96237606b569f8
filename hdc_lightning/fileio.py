"""Files the commands read and write: regular inputs read within a limit, outputs that
never replace an input or a file someone else made.

Reading checks the opened file descriptor, not the name, so a path swapped for a pipe
between the check and the read still cannot block, and the read stops one byte past the
limit whatever ``st_size`` claims (``/dev/zero`` or a growing file included).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from hdc_lightning.errors import DataError

# Written into every file hdc makes that has room for it (PNG text chunk, PDF/SVG creator);
# an existing file carrying it, or an .hdc container, may be replaced without --force.
MARKER = "hdc_lightning"
_HDC_MAGIC = b"HDC"
_MARKER_SCAN_BYTES = 1 << 24  # figures and decoded images carry the marker in their first chunks


class UnreadableFile(DataError, OSError):
    """An input that is missing, not a regular file, unreadable or over its size limit.

    Also an OSError, so loaders that skip unreadable images keep skipping it.
    """


def _describe(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def _a(noun: str) -> str:
    return f"{'an' if noun[:1].lower() in 'aeiou.' else 'a'} {noun}"


def read_regular(path: str | os.PathLike, limit: int, what: str = "file") -> bytes:
    """All bytes of the regular file ``path``, at most ``limit`` of them; UnreadableFile otherwise."""
    path = Path(path)
    try:
        # O_NONBLOCK: opening a FIFO with no writer would otherwise wait forever.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise UnreadableFile(f"{path}: {what} not found") from None
    except OSError as e:
        raise UnreadableFile(f"{path}: cannot open the {what} ({e.strerror or e})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise UnreadableFile(f"{path}: is {_describe(mode)}, not {_a(what)}")
    with os.fdopen(fd, "rb") as f:
        try:
            data = f.read(limit + 1)
        except OSError as e:
            raise UnreadableFile(f"{path}: cannot read the {what} ({e.strerror or e})") from None
    if len(data) > limit:
        raise UnreadableFile(f"{path}: larger than the {limit}-byte limit for {_a(what)}")
    return data


def is_ours(path: Path) -> bool:
    """True when ``path`` is an .hdc container or carries hdc's marker (we wrote it)."""
    try:
        with open(path, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                return False
            head = f.read(_MARKER_SCAN_BYTES)
    except OSError:
        return False
    return head.startswith(_HDC_MAGIC) or MARKER.encode() in head


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def check_output(out: str | os.PathLike, inputs: Iterable[str | os.PathLike] = (), force: bool = False) -> Path:
    """Refuse to write ``out`` over an input (always) or over a file hdc did not write (unless ``force``)."""
    out = Path(out)
    for src in map(Path, inputs):
        if _same_file(out, src):
            raise DataError(f"{out}: is also an input of this command; choose another output name")
    if out.is_dir():
        raise DataError(f"{out}: is a directory; give a file name inside it")
    if (out.exists() or out.is_symlink()) and not force and not is_ours(out):
        raise DataError(f"{out}: already exists and was not written by hdc; pass --force to replace it")
    return out
