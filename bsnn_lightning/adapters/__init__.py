"""Adapters: how ``convert`` finds and changes the neurons of one library.

One module per library (``bsnn.py`` for this package's own neurons, ``snntorch.py``, ``spikingjelly.py``),
each registering an :class:`Adapter`. A library's adapter is inert until that library is imported. ``convert`` asks every registered adapter whether it owns a module; a
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

    def plan(
        self,
        module: nn.Module,
        *,
        dynamics: str | None,
        imp: str | None,
        backend: str | None,
        options: dict,
        step_mode: str | None = None,
    ):
        """Check that ``module`` can take the requested dynamics, IMP, backend and step mode, without
        changing it; return what :meth:`apply` needs. Raise ValueError, saying what to do instead, for a
        neuron class or option this adapter cannot run. ``convert`` plans every neuron before it applies
        any, so a refused neuron leaves the whole model untouched."""
        raise NotImplementedError

    def apply(self, module: nn.Module, plan) -> nn.Module:
        """Carry out a plan; return ``module``, or the module replacing it."""
        raise NotImplementedError

    def after_convert(self, model: nn.Module, step_mode: str | None) -> None:
        """Model-wide follow-up once all of this library's neurons in ``model`` are converted."""

    def sample_shape(self, module: nn.Module, x) -> tuple[int, ...]:
        """The shape of one sample (no time, no batch) of the input ``x`` that ``module`` was called with."""
        return tuple(x.shape[2:] if getattr(module, "step_mode", "m") == "m" else x.shape[1:])

    def needs_shape(self, module: nn.Module) -> bool:
        """True if ``module`` has parameters to create that depend on its input's shape."""
        return False

    def materialize(self, module: nn.Module, sample_shape: tuple[int, ...], device=None) -> None:
        """Create those parameters from the shape of one sample (the input without time and batch)."""

    def reset(self, module: nn.Module) -> None:
        """Forget the neuron's state, so the next call starts a new sequence."""
        raise NotImplementedError

    def neuron_parameters(self, module: nn.Module) -> list[nn.Parameter]:
        """The neuron's own parameters (thresholds, time constants, eigenvalues, IMP): no weight decay."""
        return list(module.parameters(recurse=False))

    def spikes(self, module: nn.Module):
        """The spikes of the last forward pass if monitoring is on, else None."""
        return module.__dict__.get("_bsnn_last_spikes")

    def set_monitor(self, module: nn.Module, on: bool) -> None:
        """Turn recording of the last forward's spikes on or off (a forward hook; works on native neurons)."""
        handle = module.__dict__.pop("_bsnn_monitor_handle", None)
        if handle is not None:
            handle.remove()
        module.__dict__.pop("_bsnn_last_spikes", None)
        if on:
            module.__dict__["_bsnn_monitor_handle"] = module.register_forward_hook(_record_spikes)


def _record_spikes(module, args, output):
    spikes = output[0] if isinstance(output, tuple) else output
    module.__dict__["_bsnn_last_spikes"] = spikes.detach()


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


from . import bsnn, snntorch, spikingjelly  # noqa: E402,F401  (each registers its adapter)
