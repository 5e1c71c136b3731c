"""Adapters: how ``convert`` finds and changes the neurons of one library.

One module per library (``bsnn.py`` for this package's own neurons; snnTorch and SpikingJelly next), each
registering an :class:`Adapter`. ``convert`` asks every registered adapter whether it owns a module; a
third library is one new module that subclasses :class:`Adapter` and calls :func:`register_adapter`.
"""

from __future__ import annotations

from torch import nn


class Adapter:
    """The contract one library's adapter fulfils."""

    #: a short name for messages, e.g. "snntorch"
    name: str = ""

    def owns(self, module: nn.Module) -> bool:
        """True if ``module`` is a neuron of this library."""
        raise NotImplementedError

    def convert(self, module: nn.Module, *, dynamics: str | None, imp: str | None, backend: str | None, options: dict) -> nn.Module:
        """Give ``module`` the requested dynamics, IMP and backend; return it, or the module replacing it."""
        raise NotImplementedError

    def needs_shape(self, module: nn.Module) -> bool:
        """True if ``module`` has parameters to create that depend on its input's shape."""
        return False

    def materialize(self, module: nn.Module, sample_shape: tuple[int, ...]) -> None:
        """Create those parameters from the shape of one sample (the input without time and batch)."""

    def reset(self, module: nn.Module) -> None:
        """Forget the neuron's state, so the next call starts a new sequence."""
        raise NotImplementedError

    def neuron_parameters(self, module: nn.Module) -> list[nn.Parameter]:
        """The neuron's own parameters (thresholds, time constants, eigenvalues, IMP): no weight decay."""
        return list(module.parameters(recurse=False))

    def spikes(self, module: nn.Module):
        """The spikes of the last forward pass if monitoring is on, else None."""
        return None

    def set_monitor(self, module: nn.Module, on: bool) -> None:
        """Turn recording of the last forward's spikes on or off."""


_ADAPTERS: list[Adapter] = []


def register_adapter(adapter: Adapter) -> None:
    _ADAPTERS.append(adapter)


def adapter_for(module: nn.Module) -> Adapter | None:
    """The adapter that owns ``module``, or None if it is not a neuron of any registered library."""
    for adapter in _ADAPTERS:
        if adapter.owns(module):
            return adapter
    return None


def registered_adapters() -> list[str]:
    return [a.name for a in _ADAPTERS]


from . import bsnn  # noqa: E402,F401  (registers this package's own neurons)
