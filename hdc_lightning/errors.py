"""The project's own error types.

Every error a user can cause (bad config, bad data, bad file, bad checkpoint) is raised as
an :class:`HDCError` whose message is one line naming the thing and the problem; the CLI
prints it without a traceback and exits with status 2.
"""


class HDCError(Exception):
    """Base class: a user-facing error with a one-line message."""


class ConfigError(HDCError):
    """A config file or override is missing, malformed or names an unknown key."""


class RegistryError(HDCError, KeyError):
    """An unknown component name or preset."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class DataError(HDCError):
    """Input data (images, shards, folders) cannot be read."""


class BitstreamError(HDCError):
    """A .hdc file is truncated, corrupted, foreign or made by other weights."""


class CheckpointError(HDCError):
    """A checkpoint is missing, unreadable or belongs to another model/preset."""


class RunDirError(HDCError):
    """The run directory cannot be used (exists without resume/overwrite, unwritable, full)."""


class Preempted(HDCError):
    """Training was stopped by SIGTERM (a scheduler, ``timeout``); its progress is checkpointed."""


def first_line(e: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (its type name when empty), cut to ``limit``."""
    lines = str(e).strip().splitlines()
    return (lines[0] if lines else type(e).__name__)[:limit]
