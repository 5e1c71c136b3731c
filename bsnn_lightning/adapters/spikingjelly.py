"""The SpikingJelly adapter (tested with SpikingJelly 2.0.0 and 0.0.0.0.14, ``spikingjelly.activation_based``).

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

SpikingJelly 0.0.0.0.14 (the ``backend=`` API): the same three nodes convert with the same contract. Where its
arithmetic differs from 2.0's, the converted node follows it (see "SpikingJelly 0.0.0.0.14" at the end of
this module). A converted node runs on the engine whatever its ``backend`` attribute says (``'torch'``, or
``'cupy'`` on a GPU; ``functional.set_backend`` still sets the attribute): the engine's own ``backend=``
(``convert``'s) chooses the implementation, and ``backend="native"`` hands the node back to SpikingJelly with
its ``backend`` unchanged. The results are SpikingJelly's ``backend='torch'`` ones (its CuPy LIF kernel
multiplies by ``1/tau`` instead of dividing, so it can differ from them in the last bit).
"""

from __future__ import annotations

import sys

import torch
from torch import nn

from ..engine import (
    SpikingJelly014LIF,
    SpikingJelly014PLIF,
    SpikingJellyIF,
    SpikingJellyLIF,
    SpikingJellyPLIF,
    Surrogate,
)
from ..engine.surrogates import surrogate_from_function
from ..neuron_params import MethodSettings
from . import Adapter, Plan, register_adapter
from .inplace import (
    ConvertedNeuron,
    check_restorable,
    convert_in_place,
    equations_class,
    library_class,
    supported_base,
    restore_class,
    warn_autograd_surrogate,
)
from .spikingjelly_functional import ExplicitStateForward

_SURROGATES = {"Sigmoid": "sigmoid", "ATan": "atan", "PiecewiseQuadratic": "triangle"}
_SUPPORTED = ("LIFNode", "ParametricLIFNode", "IFNode")


class ConvertedNode(ExplicitStateForward, ConvertedNeuron):
    """The mixin of a converted SpikingJelly node (see the module docstring).

    A ``LIFNode`` given an IMP starts every sequence from it (at 0.5, the first step reaches 0.5 + (1.5 - 0.5) / 2):

    >>> import bsnn_lightning as bl
    >>> from spikingjelly.activation_based import neuron
    >>> node = bl.convert(nn.Sequential(neuron.LIFNode(step_mode="m")), "lif", imp="layer")[0]
    >>> type(node).__name__, isinstance(node, ConvertedNode), isinstance(node, neuron.LIFNode)
    ('LIFNode', True, True)
    >>> with torch.no_grad():
    ...     _ = node.imp.fill_(0.5)
    >>> node(torch.full((3, 1, 1), 1.5)).flatten().tolist()  # the library's LIFNode: [0.0, 1.0, 0.0]
    [1.0, 0.0, 1.0]
    """

    def single_step_forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        if self.bsnn_runs_library_code():
            return library_class(self).single_step_forward(self, x, *args, **kwargs)
        return self._bsnn_forward(x.unsqueeze(0), single=True)[0]

    def multi_step_forward(self, x_seq: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        if self.bsnn_runs_library_code():
            return library_class(self).multi_step_forward(self, x_seq, *args, **kwargs)
        return self._bsnn_forward(x_seq, single=False)

    def _bsnn_forward(self, seq: torch.Tensor, single: bool) -> torch.Tensor:
        # a 0-d step or a 1-d sequence [T] (which SpikingJelly accepts) is one sample of shape [] to the engine
        batched = seq.dim() >= 2
        given = list(seq.shape[1:] if single else seq.shape)
        if not batched:
            seq = seq.unsqueeze(1)
        v = self.v
        if isinstance(v, torch.Tensor) and tuple(v.shape) != (tuple(seq.shape[1:]) if batched else ()):
            raise ValueError(
                f"{type(self).__name__} holds a membrane of shape {list(v.shape)} from the previous call, but got "
                f"input of shape {given}: call functional.reset_net(net) between sequences"
            )
        fresh = not isinstance(v, torch.Tensor)
        state = float(v) if fresh else (v if batched else v.reshape(1))
        keep_v_seq = self.store_v_seq and not single
        out = self.bsnn_run(seq, state, fresh=fresh, return_v_seq=keep_v_seq, single=single)
        if not batched:
            out = out._replace(
                spikes=out.spikes.squeeze(1), v=out.v.reshape(()), v_seq=None if out.v_seq is None else out.v_seq.squeeze(1)
            )
        self.v = out.v
        if keep_v_seq:
            self.v_seq = out.v_seq
        elif self.store_v_seq and hasattr(self, "_append_v_seq"):
            self._append_v_seq(out.v)
        return out.spikes

    # --- what the component asks of a neuron class -------------------------------------------------------
    def _bsnn_lif(self, sample_shape):
        name = equations_class(self).__name__
        surrogate, decay_input = self._bsnn_surrogate(), getattr(self, "decay_input", None)
        common = dict(surrogate=surrogate, v_reset=self.v_reset, detach_reset=self.detach_reset)

        legacy = _multiplies_decay_014(self)  # SpikingJelly 0.0.0.0.14's other charge (end of this module)

        def make():
            if name == "IFNode":
                return SpikingJellyIF(**common)
            if name == "ParametricLIFNode":
                return (SpikingJelly014PLIF if legacy else SpikingJellyPLIF)(decay_input=decay_input, **common)
            return (SpikingJelly014LIF if legacy else SpikingJellyLIF)(decay_input=decay_input, **common)

        dynamics = self.bsnn_cached(("lif", surrogate, self.v_reset, self.detach_reset, decay_input, legacy), make)
        if name == "IFNode":
            return dynamics, {"threshold": self.v_threshold}
        if name == "ParametricLIFNode":
            return dynamics, {"q": self.w.float().sigmoid(), "threshold": self.v_threshold}
        return dynamics, {"tau": self.tau, "threshold": self.v_threshold}

    def _bsnn_reset(self):
        return self.v_reset, self.detach_reset

    def _bsnn_threshold(self, sample_shape=None):
        return self.v_threshold

    def _bsnn_surrogate(self) -> Surrogate:
        return _surrogate_of(self.surrogate_function)[0]

    def _bsnn_native_state_dtype(self, dtype, params):
        # SpikingJelly starts the membrane as full_like(x, v_reset) and its parameters are Python floats or
        # 0-d tensors (PLIF's w), which do not promote a dimensioned tensor: the membrane stays in x's dtype.
        # Bifurcation dynamics have no SpikingJelly original: their state follows the default rule.
        if self.bsnn_settings.dynamics == "lif":
            return dtype
        return super()._bsnn_native_state_dtype(dtype, params)


class SpikingJellyAdapter(Adapter):
    name = "spikingjelly"
    library_step_mode = True

    def owns(self, module: nn.Module) -> bool:
        if "spikingjelly" not in sys.modules:
            return False
        # a class of SpikingJelly's neuron package, or any subclass of one (a user's own, which plan refuses)
        return any(c.__module__.startswith("spikingjelly.activation_based.neuron") for c in type(module).__mro__)

    def plan(self, module, settings: MethodSettings | None) -> Plan:
        if settings is None:
            check_restorable(module)
            return Plan(None)
        from spikingjelly.activation_based import neuron

        supported = tuple(getattr(neuron, n) for n in _SUPPORTED)
        cls = supported_base(module, "spikingjelly", supported)
        if cls not in supported:
            raise ValueError(
                f"spikingjelly {cls.__name__} is not supported by the SpikingJelly adapter (supported: "
                f"{', '.join(_SUPPORTED)}); keep the library's own neurons with backend='native'"
            )
        if getattr(module.surrogate_function, "spiking", True) is False:
            raise ValueError(
                f"{cls.__name__} has a surrogate with spiking=False (its forward is not a spike); "
                "set surrogate_function.spiking = True or keep backend='native'"
            )
        return Plan(settings)

    def apply(self, module, plan: Plan):
        if plan.native:
            return restore_class(module)
        if _surrogate_of(module.surrogate_function)[1]:
            warn_autograd_surrogate(type(module).__name__, type(module.surrogate_function).__name__)
        convert_in_place(module, ConvertedNode, plan.settings)
        shape = _membrane_sample_shape(module)
        if shape is not None:
            module.bsnn_materialize(shape, module.v.device)
        return module

    def known_sample_shape(self, module, settings: MethodSettings):
        shape = super().known_sample_shape(module, settings)
        return shape if shape is not None else _membrane_sample_shape(module)

    def after_convert(self, model: nn.Module, step_mode: str | None) -> None:
        from spikingjelly.activation_based import functional

        if step_mode is not None:
            functional.set_step_mode(model, step_mode)
        if hasattr(functional, "invalidate_reset_cache"):
            functional.invalidate_reset_cache(model)

    def reset(self, module) -> None:
        module.reset()

    def reset_other(self, module) -> bool:
        base = sys.modules.get("spikingjelly.activation_based.base")
        if base is None or not isinstance(module, base.MemoryModule):
            return False
        module.reset()  # what functional.reset_net does for it
        return True


def _membrane_sample_shape(node) -> tuple[int, ...] | None:
    """One sample's shape from the membrane ``v`` ``[N, ...]`` an earlier run left, or None (``v`` a number)."""
    v = node.v
    if isinstance(v, torch.Tensor) and v.dim() >= 1 and v.numel():
        return tuple(v.shape[1:])
    return None


def _surrogate_of(function) -> tuple[Surrogate, bool]:
    """The engine surrogate for a SpikingJelly surrogate object, and whether it is a custom (autograd) one."""
    kind = type(function).__name__
    module = type(function).__module__
    alpha = getattr(function, "alpha", None)
    if module.startswith("spikingjelly.") and kind in _SURROGATES and isinstance(alpha, (int, float)):
        return Surrogate(_SURROGATES[kind], float(alpha)), False
    return surrogate_from_function(function, f"spikingjelly:{kind}"), True


# --- SpikingJelly 0.0.0.0.14 --------------------------------------------------------------------------------
# Its nodes are those with a ``backend`` (``supported_backends``). Everything the adapter reads and overrides
# is as in 2.0 (``v`` a number until the first step, ``single_step_forward``/``multi_step_forward``, ``tau``,
# PLIF's 0-d ``w``, ``decay_input``, the surrogates' ``alpha``/``spiking``) except:
#  - with ``decay_input=False`` and a reset towards 0 (soft, or hard to 0.0), LIF charges
#    ``v * (1 - 1/tau) + x`` and PLIF ``v * (1 - sigmoid(w)) + x``, not 2.0's ``v - (v - v_reset) / tau + x``;
#  - in eval mode LIF and IF run scripted functions, in which LIF's hard reset keeps 2.0's form even at 0.0
#    (the soft reset keeps the product form); PLIF has no eval path;
#  - ``store_v_seq`` records only multi-step calls (the adapter follows: it appends single steps only where
#    the node has 2.0's ``_append_v_seq``).


def _multiplies_decay_014(node) -> bool:
    """True if ``node`` is a SpikingJelly 0.0.0.0.14 LIF/PLIF whose next call charges with the product form."""
    cls = library_class(node)
    if not hasattr(cls, "supported_backends") or getattr(node, "decay_input", True):
        return False  # SpikingJelly 2.0, IFNode, or decay_input=True (the same arithmetic in both versions)
    if node.v_reset is None:
        return True
    return node.v_reset == 0.0 and (node.training or equations_class(node).__name__ == "ParametricLIFNode")


register_adapter(SpikingJellyAdapter())
