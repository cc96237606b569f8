"""What the training phases need from a model of each stream, as typed contracts.

A phase checks the model its config builds against one of these (``isinstance`` on a
runtime-checkable Protocol), so a model of the wrong kind is refused by name before any
training step, and a new variant (e.g. an imported one) knows what it must provide. The
LIC contract is CompressAI's (``forward → {x_hat, likelihoods}``, ``update``,
``compress``, ``decompress``, ``aux_loss``).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from torch import Tensor

from hdc_lightning.errors import ConfigError


@runtime_checkable
class LICStream(Protocol):
    def forward(self, x: Tensor) -> Any: ...  # .x_hat, .likelihoods {name: Tensor}
    def aux_loss(self) -> Tensor: ...
    def update(self, force: bool = False) -> bool: ...
    def compress(self, x: Tensor) -> Any: ...
    def decompress(self, *args: Any, **kwargs: Any) -> Any: ...


@runtime_checkable
class VQStream(Protocol):
    codebook_size: int
    downsample: int  # image pixels per token side
    prior: Any  # the index prior: .bits(indices) is the ideal length of an index map

    @property
    def last_layer(self) -> Tensor: ...  # where the VQGAN loss balances its adversarial weight
    def forward(self, x: Tensor) -> Any: ...  # VQOutput
    def encode_indices(self, x: Tensor) -> Tensor: ...
    def update(self, force: bool = False) -> bool: ...
    def index_coder(self, checksum: bool = True) -> Any: ...


@runtime_checkable
class HybridModel(Protocol):
    lic: LICStream
    vq: VQStream
    drv_names: tuple[str, ...]

    @property
    def learned_realism(self) -> bool: ...
    def forward(self, x: Tensor, **options: Any) -> Any: ...  # HDCOutput
    def update(self, force: bool = False) -> bool: ...


def check_contract(model: Any, contract: type, phase: str, model_name: Any) -> None:
    """One-line refusal naming what is missing when ``model`` does not fulfil ``contract``."""
    if isinstance(model, contract):
        return
    missing = [n for n in _members(contract) if not hasattr(model, n)]
    raise ConfigError(
        f"model.name: phase '{phase}' needs a {contract.__name__} model "
        f"(missing: {', '.join(missing) or 'a member of the contract'}), got '{model_name}'"
    )


def _members(contract: type) -> list[str]:
    names = set(getattr(contract, "__annotations__", {}))
    names |= {n for n in vars(contract) if not n.startswith("_")}
    return sorted(names)
