"""Checks several subcommands share: device names, mask levels and where outputs may go."""

from __future__ import annotations

from hdc_lightning.errors import ConfigError


def check_device(name: str | None, flag: str = "--device") -> str | None:
    """A device string torch accepts and this machine has; ConfigError (one line) otherwise."""
    if name is None:
        return None
    import torch

    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(f"{flag} {name!r}: not a device name (use cpu, cuda or cuda:N)") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(f"{flag} {name}: no CUDA device is available on this machine; use {flag} cpu")
        if dev.index is not None and dev.index >= count:
            raise ConfigError(f"{flag} {name}: this machine has {count} CUDA device(s), numbered from 0")
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError(f"{flag} {name}: MPS is not available on this machine; use {flag} cpu")
    elif dev.type != "cpu":
        raise ConfigError(f"{flag} {name}: device type {dev.type!r} is not supported here (use cpu or cuda)")
    return name


def check_mask(level: str | None, flag: str = "--mask") -> str | None:
    """A mask level of the hybrid format (checked here, not by argparse choices, so the list
    lives once, in ``codec.hybrid``, and is imported only when the flag is given)."""
    if level is None:
        return None
    from hdc_lightning.codec.hybrid import MASK_MODES

    if level not in MASK_MODES:
        raise ConfigError(f"{flag} {level!r}: choose one of {', '.join(MASK_MODES)}")
    return level


def add_force(p) -> None:
    p.add_argument(
        "--force",
        action="store_true",
        help="replace an existing output file that hdc did not write (never an input of the command)",
    )
