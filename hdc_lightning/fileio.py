"""Files the commands read and write: regular inputs read within a limit, outputs that
never replace an input or a file someone else made, written whole or not at all.

Reading checks the opened file descriptor, not the name, so a path swapped for a pipe
between the check and the read still cannot block, and the read stops one byte past the
limit whatever ``st_size`` claims (``/dev/zero`` or a growing file included).

Writing (:func:`output_file`) goes to a temporary file in the target's folder, is fsynced and
renamed over the target, so a full disk or a crash leaves the previous file (or nothing), never
half of one. Whether an existing file may be replaced without ``--force`` is decided by proof,
not by its content: an ``.hdc`` container (the format's magic), or a file whose path, size and
SHA-256 the ledger (:func:`ledger_path`) recorded when hdc wrote it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

from hdc_lightning.errors import ConfigError, DataError

# Metadata written into files that have room for it (PNG text chunk, PDF/SVG creator), so a
# reader can tell who made them; replacing a file is decided by the ledger, not by this text.
MARKER = "hdc_lightning"
_HDC_MAGIC = b"HDC"
STATE_ENV = "HDC_STATE_DIR"  # where the ledger lives (default: $XDG_STATE_HOME/hdc_lightning)
_LEDGER_COMPACT_LINES = 4096  # past this, entries of files that changed or vanished are dropped
NAME_MAX_BYTES = 255  # one path component on every common file system
TEMP_SUFFIX = ".part"  # output_file's temporary files: ".<name>.<random>.part", removed on failure
TEMP_GLOB = f".*{TEMP_SUFFIX}"


def is_temp(name: str) -> bool:
    """Whether a file name is one of :func:`output_file`'s temporary files (a killed writer's)."""
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


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


# ---------------------------------------------------------------- the ledger of hdc's outputs
def ledger_path() -> Path:
    """The file listing what hdc wrote: one ``sha256<TAB>size<TAB>absolute path`` line each."""
    root = os.environ.get(STATE_ENV) or Path(
        os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state", "hdc_lightning"
    )
    return Path(root) / "outputs.tsv"


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, read 1 MiB at a time."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _entries() -> dict[str, tuple[str, int]]:
    """Absolute path → (sha256, size) of the last write recorded for it."""
    try:
        lines = ledger_path().read_text(errors="replace").splitlines()
    except OSError:
        return {}
    out = {}
    for line in lines:
        parts = line.split("\t", 2)
        if len(parts) == 3 and parts[1].isdigit():
            out[parts[2]] = (parts[0], int(parts[1]))
    return out


def _record(path: Path) -> None:
    """Note that hdc wrote ``path`` as it is now. Best effort: without a writable state folder
    the only cost is that a rerun asks for --force."""
    ledger = ledger_path()
    try:
        key = str(path.resolve())
        line = f"{sha256_file(path)}\t{path.stat().st_size}\t{key}\n"
        ledger.parent.mkdir(parents=True, exist_ok=True)
        with open(ledger, "a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)  # concurrent commands append whole lines
            f.write(line)
            f.flush()
            f.seek(0)
            if sum(1 for _ in f) > _LEDGER_COMPACT_LINES:
                kept = {p: e for p, e in _entries().items() if _still(Path(p), e[1])}
                f.seek(0)
                f.truncate()
                f.writelines(f"{h}\t{n}\t{p}\n" for p, (h, n) in kept.items())
    except OSError:
        pass


def _still(path: Path, size: int) -> bool:
    try:
        return path.stat().st_size == size
    except OSError:
        return False


def is_ours(path: Path) -> bool:
    """True when ``path`` is a regular file hdc provably wrote: an .hdc container, or the exact
    bytes the ledger recorded for this path."""
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            return False
        with open(path, "rb") as f:
            if f.read(len(_HDC_MAGIC)) == _HDC_MAGIC:
                return True
        entry = _entries().get(str(Path(path).resolve()))
        return entry is not None and entry[1] == st.st_size and entry[0] == sha256_file(Path(path))
    except OSError:
        return False


# ---------------------------------------------------------------- writing
@contextlib.contextmanager
def output_file(path: str | os.PathLike, record: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (named ``.<name>.<random>.part``: writers must be
    told the format, not guess it from the suffix); once the block returns, fsync it and rename
    it over ``path``.

    On any failure the temporary file and the folders this call made are removed and the
    previous ``path`` is untouched; an OSError becomes a one-line DataError naming ``path``.
    ``record``: enter the result in the ledger (files a later run may replace without --force).
    """
    path = Path(path)
    made = _missing_parents(path.parent)
    tmp = path.with_name(f".{path.name[:200]}.{secrets.token_hex(4)}{TEMP_SUFFIX}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # the umask applies
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        _refuse_special(path)  # a pipe put there meanwhile is not replaced either
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as e:
        _cleanup(tmp, made)
        raise DataError(f"{path}: cannot write ({e.strerror or e})") from None
    except BaseException:
        _cleanup(tmp, made)
        raise
    if record:
        _record(path)


def write_bytes(path: str | os.PathLike, data: bytes, record: bool = True) -> Path:
    """Write ``data`` to ``path`` through :func:`output_file`."""
    with output_file(path, record) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str, record: bool = True) -> Path:
    return write_bytes(path, text.encode(), record)


def _missing_parents(folder: Path) -> list[Path]:
    made = []
    while not folder.exists() and folder != folder.parent:
        made.append(folder)
        folder = folder.parent
    return made


def _cleanup(tmp: Path, made: list[Path]) -> None:
    with contextlib.suppress(OSError):
        tmp.unlink()
    for folder in made:  # innermost first; only if still empty
        with contextlib.suppress(OSError):
            folder.rmdir()


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a folder be fsynced
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _refuse_special(path: Path) -> None:
    """DataError when ``path`` exists and is not a regular file (checked without opening it)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if not stat.S_ISREG(mode):
        raise DataError(f"{path}: is {_describe(mode)}; hdc writes only regular files")


# ---------------------------------------------------------------- names that become paths
def check_component(name: object, what: str) -> str:
    """A user-given name used as one path component: a non-empty string, no '/', not '.' or
    '..', no NUL, at most NAME_MAX_BYTES bytes. ConfigError otherwise."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{what} must be a non-empty name, got {name!r}")
    if "/" in name or "\0" in name or name in (".", "..") or name.startswith("-"):
        raise ConfigError(
            f"{what}={name!r}: must be a plain file or folder name (no '/', not '.' or '..', not starting with '-')"
        )
    if len(name.encode("utf-8", "surrogateescape")) > NAME_MAX_BYTES:
        raise ConfigError(f"{what}={name[:40]!r}…: longer than {NAME_MAX_BYTES} bytes")
    return name


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def check_output(out: str | os.PathLike, inputs: Iterable[str | os.PathLike] = (), force: bool = False) -> Path:
    """Refuse to write ``out`` over an input (always) or over a file hdc did not write (unless ``force``)."""
    out = Path(out)
    if len(out.name.encode("utf-8", "surrogateescape")) > NAME_MAX_BYTES:
        raise DataError(f"{str(out)[:60]}…: file name longer than {NAME_MAX_BYTES} bytes")
    for src in map(Path, inputs):
        if _same_file(out, src):
            raise DataError(f"{out}: is also an input of this command; choose another output name")
    if out.is_dir():
        raise DataError(f"{out}: is a directory; give a file name inside it")
    _refuse_special(out)
    for folder in (out.parent, *out.parent.parents):
        if folder.exists() or folder.is_symlink():
            if not folder.is_dir():
                raise DataError(f"{out}: {folder} is a file, not a folder")
            break
    if (out.exists() or out.is_symlink()) and not force and not is_ours(out):
        raise DataError(f"{out}: already exists and was not written by hdc; pass --force to replace it")
    return out
