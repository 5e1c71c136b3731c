"""Adapters: how ``convert`` finds and changes the neurons of one library.

One module per library (``bsnn.py`` for this package's own neurons, ``snntorch.py``, ``spikingjelly.py``),
each registering an :class:`Adapter`. A library's adapter is inert until that library is imported.
``convert`` asks every registered adapter whether it owns a module; a third library is one new module that
subclasses :class:`Adapter` and calls :func:`register_adapter`.

The contract, in the order ``convert`` uses it: ``owns`` a module; ``default_settings`` (what a native neuron
of the library runs); ``plan`` (check, change nothing, return a :class:`Plan`); ``apply`` (carry it out);
``after_convert`` (model-wide follow-up). Everything about the methods' parameters, monitoring and the
engine call is shared: it lives in :class:`~bsnn_lightning.neuron_params.MethodNeuron`, which every
engine-backed neuron (this package's and converted ones) inherits.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..neuron_params import MethodNeuron, MethodSettings, Recording, record


@dataclass(frozen=True)
class Plan:
    """What ``convert`` will do to one neuron: run it on the engine with ``settings``, or (``settings`` None)
    give a library neuron its own class back.

    >>> Plan(None).native, Plan(MethodSettings()).native
    (True, False)
    """

    settings: MethodSettings | None

    @property
    def native(self) -> bool:
        return self.settings is None


class Adapter:
    """The contract one library's adapter fulfils.

    >>> import bsnn_lightning as bl
    >>> neuron = bl.LIFNeuron()
    >>> adapter = adapter_for(neuron)
    >>> plan = adapter.plan(neuron, adapter.settings_of(neuron).updated(imp="layer"))  # checks, changes nothing
    >>> neuron.imp is None, adapter.apply(neuron, plan) is neuron, neuron.imp.shape
    (True, True, torch.Size([]))
    """

    #: a short name for messages, e.g. "snntorch"
    name: str = ""
    #: True if the library's neurons keep a step mode of their own (SpikingJelly's ``step_mode``); then
    #: ``convert(step_mode=...)`` is passed to :meth:`after_convert`, not stored in the settings
    library_step_mode: bool = False

    def owns(self, module: nn.Module) -> bool:
        """True if ``module`` is a neuron of this library."""
        raise NotImplementedError

    def default_settings(self, module: nn.Module) -> MethodSettings:
        """The settings a neuron of this library that was never converted runs with."""
        return MethodSettings(step_mode=None if self.library_step_mode else "s")

    def plan(self, module: nn.Module, settings: MethodSettings | None) -> Plan:
        """Check that ``module`` can run with ``settings`` (None: return to the library's own class), without
        changing it. Raise ValueError, saying what to do instead, for a neuron class or setting this adapter
        cannot run. ``convert`` plans every neuron before it applies any, so a refused neuron leaves the
        whole model untouched."""
        raise NotImplementedError

    def apply(self, module: nn.Module, plan: Plan) -> nn.Module:
        """Carry out a plan; return ``module``, or the module replacing it."""
        raise NotImplementedError

    def after_convert(self, model: nn.Module, step_mode: str | None) -> None:
        """Model-wide follow-up once all of this library's neurons in ``model`` are converted."""

    def reset(self, module: nn.Module) -> None:
        """Forget the neuron's state, so the next call starts a new sequence."""
        raise NotImplementedError

    def reset_other(self, module: nn.Module) -> bool:
        """Forget the state of a module of this library that is no neuron but keeps state between calls (a
        SpikingJelly ``MemoryModule`` such as ``layer.Dropout``'s mask); False if ``module`` keeps none."""
        return False

    # --- shared by every library ------------------------------------------------------------------------------
    def settings_of(self, module: nn.Module) -> MethodSettings:
        """The settings ``module`` runs with now."""
        return module.bsnn_settings if isinstance(module, MethodNeuron) else self.default_settings(module)

    def takes_sequences(self, module: nn.Module) -> bool:
        """True if a call of ``module`` takes a whole sequence ``[T, N, ...]``."""
        if isinstance(module, MethodNeuron) and module.bsnn_settings.step_mode is not None:
            return module.bsnn_settings.step_mode == "m"
        return getattr(module, "step_mode", "s") == "m"

    def known_sample_shape(self, module: nn.Module, settings: MethodSettings) -> tuple[int, ...] | None:
        """The shape of one sample of ``module``'s input, if known before any call with ``settings``: from a
        checkpoint or an earlier call on the engine. An adapter whose library state tells it overrides this."""
        if not isinstance(module, MethodNeuron):
            return None
        if module.bsnn_sample_shape is not None:
            return module.bsnn_sample_shape
        return module.__dict__.get("bsnn_seen_shape")

    def sample_shape(self, module: nn.Module, x) -> tuple[int, ...]:
        """The shape of one sample (no time, no batch) of the input ``x`` that ``module`` was called with."""
        return tuple(x.shape[2:] if self.takes_sequences(module) else x.shape[1:])

    def neuron_parameters(self, module: nn.Module) -> list[nn.Parameter]:
        """The neuron's own parameters (thresholds, time constants, eigenvalues, IMP): no weight decay."""
        return list(module.parameters(recurse=False))

    def set_monitor(self, module: nn.Module, mode: str | None) -> None:
        """Record the spikes (``"spikes"``), spikes and membranes (``"membrane"``, engine neurons only) or
        nothing (None) of the following forward calls. A neuron that runs on the library's own loop records
        its spikes through a forward hook."""
        handle = module.__dict__.pop("_bsnn_monitor_handle", None)
        if handle is not None:
            handle.remove()
        if isinstance(module, MethodNeuron):
            module.bsnn_set_monitor(mode)
            return
        module.__dict__.pop("bsnn_recording", None)
        if mode is not None:
            module.__dict__["_bsnn_monitor_handle"] = module.register_forward_hook(self._record_native)

    def recording(self, module: nn.Module) -> Recording | None:
        """What the neuron kept of its last monitored forward call, or None."""
        return module.__dict__.get("bsnn_recording")

    def _record_native(self, module, args, output):
        spikes = output[0] if isinstance(output, tuple) else output
        record(module, Recording(spikes.detach(), None, None, self.takes_sequences(module)))


_ADAPTERS: list[Adapter] = []


def register_adapter(adapter: Adapter) -> None:
    """Make ``convert`` and the model-wide helpers know one more library's neurons (see :class:`Adapter`).

    >>> class Tagged(Adapter):  # a toy library whose neurons carry a flag
    ...     name = "tagged"
    ...     def owns(self, module):
    ...         return getattr(module, "tagged_neuron", False)
    >>> register_adapter(Tagged())
    >>> registered_adapters()[-1]
    'tagged'
    >>> _ADAPTERS.pop().name  # (the example takes it back out)
    'tagged'
    """
    _ADAPTERS.append(adapter)


def adapter_for(module: nn.Module) -> Adapter | None:
    """The adapter that owns ``module``, or None if it is not a neuron of any registered library.

    >>> import bsnn_lightning as bl
    >>> adapter_for(bl.LIFNeuron()).name, adapter_for(nn.ReLU())
    ('bsnn', None)
    """
    for adapter in _ADAPTERS:
        if adapter.owns(module):
            return adapter
    return None


def reset_module(module: nn.Module) -> None:
    """Reset ``module``'s own state if it is a neuron or another stateful module of a registered library.

    >>> import torch, bsnn_lightning as bl
    >>> neuron = bl.LIFNeuron()
    >>> _ = neuron(torch.rand(2, 1, 3))
    >>> reset_module(neuron)
    >>> neuron.v is None
    True
    """
    adapter = adapter_for(module)
    if adapter is not None:
        adapter.reset(module)
        return
    for adapter in _ADAPTERS:
        if adapter.reset_other(module):
            return


def registered_adapters() -> list[str]:
    """The names of the registered adapters, in the order ``convert`` asks them.

    >>> registered_adapters()[:3]
    ['bsnn', 'snntorch', 'spikingjelly']
    """
    return [a.name for a in _ADAPTERS]


from . import bsnn, snntorch, spikingjelly  # noqa: E402,F401  (each registers its adapter)
