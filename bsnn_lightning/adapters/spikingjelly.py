"""The SpikingJelly adapter (tested with SpikingJelly 2.0.0, ``spikingjelly.activation_based``).

Supported: ``neuron.LIFNode``, ``neuron.ParametricLIFNode`` and ``neuron.IFNode``, in step modes ``s`` and
``m``, hard reset (any ``v_reset``) and soft reset (``v_reset=None``), ``detach_reset``, ``decay_input``,
``store_v_seq``. Every other SpikingJelly neuron (and any subclass of these) is refused with an error naming
its class, unless ``backend="native"`` leaves the model's neurons as they are.

Surrogates: ``Sigmoid``, ``ATan`` and ``PiecewiseQuadratic`` map to the engine's ``sigmoid``, ``atan`` and
``triangle`` formulas; any other surrogate object (SpikingJelly's other built-ins, or a user's own) still
works: its derivative is taken from the object by autograd in the reference backend, with one warning at
conversion. A surrogate with ``spiking=False`` (its forward is the smooth primitive, not a spike) is refused.

State: ``node.v`` is SpikingJelly's own memory. After ``node.reset()`` or ``functional.reset_net(net)`` it
is a number again (``v_reset``, or 0 for a soft reset) and the next call starts a sequence from it, plus the
IMP if there is one. Converting keeps every module object in place, so ``reset_net``'s cached module list
stays valid (the cache is invalidated anyway after a conversion).
"""

from __future__ import annotations

import sys

import torch
from torch import nn

from ..engine import Surrogate, SpikingJellyIF, SpikingJellyLIF, SpikingJellyPLIF, multistep
from ..engine.surrogates import surrogate_from_function
from . import Adapter, register_adapter
from .inplace import (
    NATIVE,
    ConvertedNeuron,
    Settings,
    check_native_request,
    check_restorable,
    convert_in_place,
    restore_class,
    warn_autograd_surrogate,
)

_SURROGATES = {"Sigmoid": "sigmoid", "ATan": "atan", "PiecewiseQuadratic": "triangle"}
_SUPPORTED = ("LIFNode", "ParametricLIFNode", "IFNode")


class ConvertedNode(ConvertedNeuron):
    """The mixin of a converted SpikingJelly node (see the module docstring)."""

    def single_step_forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        return self._bsnn_run(x.unsqueeze(0), single=True)[0]

    def multi_step_forward(self, x_seq: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        return self._bsnn_run(x_seq, single=False)

    def _bsnn_run(self, seq: torch.Tensor, single: bool) -> torch.Tensor:
        if seq.dim() < 2:
            expected = "[N, ...]" if single else "[T, N, ...]"
            raise ValueError(f"converted {type(self).__name__} expected input of shape {expected}, got {list(seq.shape[1:] if single else seq.shape)}")
        v = self.v
        if isinstance(v, torch.Tensor):
            if tuple(v.shape) != tuple(seq.shape[1:]):
                raise ValueError(
                    f"{type(self).__name__} holds a membrane of shape {list(v.shape)} from the previous call, but got "
                    f"input of shape {list(seq.shape[1:] if single else seq.shape)}: call functional.reset_net(net) "
                    "between sequences"
                )
            v0 = v
        else:
            v0 = self._bsnn_initial_state(float(v))
        if self.bsnn_settings.needs_shape:
            self._bsnn_materialize(tuple(seq.shape[2:]), seq.device)
        self._bsnn_check_ready()
        dynamics, params = self._bsnn_engine(tuple(seq.shape[2:]))
        keep_v_seq = self.store_v_seq and not single
        out = multistep(seq, dynamics, params, v0, backend=self.bsnn_settings.backend, return_v_seq=keep_v_seq)
        self.v = out.v
        if keep_v_seq:
            self.v_seq = out.v_seq
        elif self.store_v_seq and hasattr(self, "_append_v_seq"):
            self._append_v_seq(out.v)
        return out.spikes

    # --- what the engine needs ---------------------------------------------------------------------------
    def _bsnn_library_dynamics(self, sample_shape):
        name = type(self).__bases__[1].__name__
        surrogate, decay_input = self._bsnn_surrogate(), getattr(self, "decay_input", None)
        common = dict(surrogate=surrogate, v_reset=self.v_reset, detach_reset=self.detach_reset)

        def make():
            if name == "IFNode":
                return SpikingJellyIF(**common)
            if name == "ParametricLIFNode":
                return SpikingJellyPLIF(decay_input=decay_input, **common)
            return SpikingJellyLIF(decay_input=decay_input, **common)

        dynamics = self._bsnn_cached(("lif", surrogate, self.v_reset, self.detach_reset, decay_input), make)
        if name == "IFNode":
            return dynamics, {"threshold": self.v_threshold}
        if name == "ParametricLIFNode":
            return dynamics, {"q": self.w.float().sigmoid(), "threshold": self.v_threshold}
        return dynamics, {"tau": self.tau, "threshold": self.v_threshold}

    def _bsnn_bifurcation_reset(self):
        return self.v_reset, self.detach_reset

    def _bsnn_threshold(self, sample_shape=None):
        return self.v_threshold

    def _bsnn_surrogate(self) -> Surrogate:
        return _surrogate_of(self.surrogate_function)[0]


class SpikingJellyAdapter(Adapter):
    name = "spikingjelly"

    def owns(self, module: nn.Module) -> bool:
        if "spikingjelly" not in sys.modules:
            return False
        return type(module).__module__.startswith("spikingjelly.activation_based.neuron") or (
            isinstance(module, ConvertedNode)
        )

    def plan(self, module, *, dynamics, imp, backend, options, step_mode=None):
        if backend == "native":
            check_native_request(dynamics, imp, options, None)
            check_restorable(module)
            return NATIVE
        from spikingjelly.activation_based import neuron

        library_class = type(module).__bases__[1] if isinstance(module, ConvertedNeuron) else type(module)
        if library_class not in tuple(getattr(neuron, n) for n in _SUPPORTED):
            raise ValueError(
                f"spikingjelly {library_class.__name__} is not supported by the SpikingJelly adapter (supported: "
                f"{', '.join(_SUPPORTED)}); keep the library's own neurons with backend='native'"
            )
        if getattr(module.surrogate_function, "spiking", True) is False:
            raise ValueError(
                f"{library_class.__name__} has a surrogate with spiking=False (its forward is not a spike); "
                "set surrogate_function.spiking = True or keep backend='native'"
            )
        previous = module.bsnn_settings if isinstance(module, ConvertedNeuron) else Settings()
        return previous.updated(dynamics=dynamics, imp=imp, backend=backend, options=options)

    def apply(self, module, plan):
        if plan is NATIVE:
            return restore_class(module)
        if _surrogate_of(module.surrogate_function)[1]:
            warn_autograd_surrogate(type(module).__name__, type(module.surrogate_function).__name__)
        convert_in_place(module, ConvertedNode, plan)
        module._bsnn_learn_shape_from_state(module.v)  # a membrane [N, ...] left by an earlier run
        return module

    def after_convert(self, model: nn.Module, step_mode: str | None) -> None:
        from spikingjelly.activation_based import functional

        if step_mode is not None:
            functional.set_step_mode(model, step_mode)
        if hasattr(functional, "invalidate_reset_cache"):
            functional.invalidate_reset_cache(model)

    def needs_shape(self, module) -> bool:
        return isinstance(module, ConvertedNeuron) and module._bsnn_needs_shape()

    def materialize(self, module, sample_shape, device=None) -> None:
        module._bsnn_materialize(sample_shape, device)

    def reset(self, module) -> None:
        module.reset()


def _surrogate_of(function) -> tuple[Surrogate, bool]:
    """The engine surrogate for a SpikingJelly surrogate object, and whether it is a custom (autograd) one."""
    kind = type(function).__name__
    module = type(function).__module__
    alpha = getattr(function, "alpha", None)
    if module.startswith("spikingjelly.") and kind in _SURROGATES and isinstance(alpha, (int, float)):
        return Surrogate(_SURROGATES[kind], float(alpha)), False
    return surrogate_from_function(function, f"spikingjelly:{kind}"), True


register_adapter(SpikingJellyAdapter())
