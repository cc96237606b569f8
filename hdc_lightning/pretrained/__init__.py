"""Models shipped inside the package: weights only, loadable with ``weights_only=True``.

``load_codec("small")`` and ``hdc compress IMAGE`` (no ``--ckpt``) use them. Each model has a
card beside its weights (``<name>.md``): data, command, steps, wall time, model id and its
measured Kodak numbers.
"""

from __future__ import annotations

from pathlib import Path

from hdc_lightning.errors import CheckpointError

HERE = Path(__file__).resolve().parent
# The hybrid, and its LIC stream's λ ladder alone (λ = 0.0003, 0.0006, 0.0012) for comparisons.
MODELS = {
    "small": "small.pt",
    "small-lic-lo": "small-lic-lo.pt",
    "small-lic": "small-lic.pt",
    "small-lic-hi": "small-lic-hi.pt",
}
DEFAULT = "small"


def names() -> list[str]:
    return sorted(MODELS)


def is_pretrained(ref: str | Path) -> bool:
    """True when ``ref`` names a shipped model rather than a checkpoint path."""
    return isinstance(ref, str) and ref in MODELS


def weights_path(name: str) -> Path:
    """The shipped weights of ``name``, or one line saying what is wrong."""
    if name not in MODELS:
        raise CheckpointError(f"unknown pretrained model '{name}'; shipped: {', '.join(names())}")
    path = HERE / MODELS[name]
    if not path.is_file():
        raise CheckpointError(
            f"{path}: pretrained model '{name}' is missing from this installation; "
            "reinstall the package (pip install -e .) or pass --ckpt"
        )
    return path


def card_path(name: str) -> Path:
    """The model card; the LIC-alone points share the hybrid's (`small-lic*` → `small.md`)."""
    return weights_path(name).with_name(name.split("-")[0] + ".md")


def choose(model: str | None, ckpt: str | None) -> str:
    """What a command codes with: ``--ckpt PATH``, else ``--model NAME``, else the default model."""
    from hdc_lightning.errors import ConfigError

    if model and ckpt:
        raise ConfigError("give --model or --ckpt, not both")
    if model and not is_pretrained(model):
        raise ConfigError(
            f"--model {model!r}: not a shipped model; shipped: {', '.join(names())} (a file: --ckpt PATH)"
        )
    return ckpt or model or DEFAULT


def add_model_args(parser, what: str = "code") -> None:
    """``--model NAME`` and ``--ckpt PATH`` (one or neither) on a command's parser."""
    parser.add_argument(
        "--model",
        default=None,
        help=f"shipped model to {what} with: {', '.join(names())} "
        f"(used when neither --model nor --ckpt is given: {DEFAULT})",
    )
    parser.add_argument(
        "--ckpt", default=None, help="checkpoint written by `hdc fit` (e.g. runs/NAME/checkpoints/last.ckpt)"
    )
