"""The snnTorch adapter (tested with snnTorch 1.0): ``snntorch.Leaky``, ``Synaptic`` and ``RLeaky`` run on the
multistep engine.

Supported: ``Leaky``, ``Synaptic`` and ``RLeaky`` with every reset mechanism (subtract, zero, none),
``reset_delay`` True and False, learnable ``beta`` (scalar or per neuron), ``threshold`` and ``Synaptic``'s
``alpha``, graded spikes (learnable too), ``init_hidden`` on and off, ``output`` on and off; ``RLeaky``'s
recurrent module (``recurrent``, and ``V`` for one-to-one connections) stays the library's. ``Synaptic``
filters its synaptic current in PyTorch and runs its membrane on the engine; ``RLeaky`` steps itself around
its recurrent module, with snnTorch's own step for ``dynamics="lif"`` (see
:mod:`~bsnn_lightning.adapters.snntorch_neurons`). Every other snnTorch neuron (``Alpha``, whose membrane is
no state of its own, ``Lapicque``, ``RSynaptic``, the LSTMs, ``LeakyParallel``, subclasses of the three...)
is refused with an error naming its class, unless ``backend="native"`` leaves the model's neurons as they
are. So are ``inhibition``, ``state_quant`` and ``surrogate_disable``, which the engine does not model.

Step modes. By default (``step_mode="s"``) a converted ``Leaky`` is called once per time step from the
user's own loop, exactly as before: ``spk, mem = lif(x_t, mem)`` or, with ``init_hidden=True``,
``spk = lif(x_t)``. With ``convert(..., step_mode="m")`` it takes the whole sequence ``[T, N, ...]`` in one
engine call, and the layers between neurons in an ``nn.Sequential`` get hooks that fold time into the batch
dimension (``[T, N, ...] -> [T * N, ...]`` and back), so ``net(x_seq)`` runs the whole model over time.
In that mode the states a neuron returns (``output=True``, or ``init_hidden=False``) are the sequences
``[T, N, ...]`` of its states (membranes; ``Synaptic``'s synaptic currents too), and ``lif.mem`` holds the
last one. Batch norm between neurons then
normalises over all ``T x N`` samples of the sequence at once (as SpikingJelly's multi-step layers do),
where the per-step loop normalises each step's batch alone; in eval mode the two agree exactly.

Surrogates: snnTorch's ``atan(alpha)``, ``sigmoid(slope)`` and ``fast_sigmoid(slope)`` map to the engine's
formulas (``sigmoid`` is evaluated in the overflow-free form: where snnTorch's ``exp(-slope z)`` overflows
and its gradient is NaN, ours is the limit, 0). Any other ``spike_grad`` (``triangular``, ``custom_surrogate``,
a user's own function) still works: its derivative is taken from the function itself by autograd in the
reference backend, with one warning at conversion.

The learnable IMP is the membrane (``mem``) a sequence starts from (``Synaptic``'s ``syn`` and ``RLeaky``'s
``spk`` start from their own states); bifurcation dynamics replace ``beta``'s decay of the membrane. A
sequence starts after ``reset_mem()``/``init_leaky()``, ``snntorch.utils.reset(net)``,
any other assignment to ``lif.mem``, a membrane of a new shape, or (explicit-state style) a ``mem``
argument that is not the membrane this neuron returned last (a detached copy of it still counts as the
same membrane). The sequence then starts from that membrane plus the IMP.
"""

from __future__ import annotations

import sys

import torch
from torch import nn

from ..engine import SnnTorchLeaky, SnnTorchLeakyImmediate, SnnTorchSynapticZero, SnnTorchSynapticZeroImmediate, Surrogate
from ..engine.surrogates import surrogate_from_function
from ..neuron_params import MethodSettings
from . import Adapter, Plan, register_adapter
from .inplace import (
    ConvertedNeuron,
    check_restorable,
    convert_in_place,
    equations_class,
    supported_base,
    restore_class,
    warn_autograd_surrogate,
)

_SURROGATES = {"atan": ("atan", "alpha"), "sigmoid": ("sigmoid", "slope"), "fast_sigmoid": ("fast_sigmoid", "slope")}


class ConvertedSnnTorchNeuron(ConvertedNeuron):
    """What every converted snnTorch neuron shares: the start of a sequence, the sequence/step handling of
    the input, and the component's hooks for the reset, threshold and surrogate (see the module docstring).
    ``mem`` is the membrane the IMP and bifurcation dynamics act on.

    >>> import snntorch as snn, bsnn_lightning as bl
    >>> net = torch.nn.Sequential(snn.Leaky(beta=0.5), snn.Synaptic(alpha=0.5, beta=0.5))
    >>> net = bl.convert(net, "lif", imp="layer")
    >>> [isinstance(neuron, ConvertedSnnTorchNeuron) for neuron in net], [type(neuron).__name__ for neuron in net]
    ([True, True], ['Leaky', 'Synaptic'])
    >>> with torch.no_grad():
    ...     _ = net[0].imp.fill_(0.25)
    >>> mem = net[0].init_leaky()  # a new sequence: its membrane starts at mem + IMP
    >>> spk, mem = net[0](torch.zeros(2, 3), mem)  # one step with no input: mem_1 = 0.5 * 0.25
    >>> mem.tolist()
    [[0.125, 0.125, 0.125], [0.125, 0.125, 0.125]]
    """

    def __setattr__(self, name, value):
        if name == "mem":  # a reset or a state set from outside: the next call starts a sequence
            self.__dict__["bsnn_fresh"] = True
        super().__setattr__(name, value)

    def __setstate__(self, state):
        super().__setstate__(state)
        self._bsnn_surrogate()  # the lookup is not pickled; redo it now rather than in a traced forward

    def _bsnn_sequence(self, input_, sequence: bool) -> tuple[torch.Tensor, bool]:
        """The input as the engine takes it, ``[T, N, ...]``, and whether it has a batch dimension (a 0-d step,
        or a 1-d sequence ``[T]``, is one sample of shape ``[]`` to the engine: ``[T, 1]``)."""
        if sequence and input_.dim() < 1:
            raise ValueError(
                f"converted snntorch.{type(self).__name__} in step_mode='m' expected input [T, ...], got {list(input_.shape)}"
            )
        seq = input_ if sequence else input_.unsqueeze(0)
        batched = seq.dim() >= 2
        return (seq if batched else seq.unsqueeze(1)), batched

    def _bsnn_state(self, name: str, given, seq: torch.Tensor, batched: bool) -> "torch.Tensor | None":
        """The state ``name`` a call starts from (``given``, else the module's buffer) as the engine takes it, or
        None where it does not fit the input: a new sequence, which snnTorch starts from zeros."""
        state = self._buffers[name] if given is None else given
        if tuple(state.shape) != (tuple(seq.shape[1:]) if batched else ()):
            return None
        return state if batched else state.reshape(1)

    def _bsnn_fresh(self, mem) -> bool:
        """True if this call starts a sequence: after a reset or an assignment to ``mem``, or given a membrane
        that is not the one this neuron returned last (a detached copy of it continues the sequence)."""
        return self.bsnn_fresh or (mem is not None and not _same_tensor(mem, self._buffers["mem"]))

    def _bsnn_leaky_lif(self, zero_charged: bool = False):
        """snnTorch's membrane as the engine runs it: :class:`SnnTorchLeaky` (or, for ``reset_delay=False``,
        :class:`SnnTorchLeakyImmediate`); ``zero_charged``: a reset to zero of the charged membrane
        (``Synaptic``'s, :class:`SnnTorchSynapticZero`/``...Immediate``) instead of ``Leaky``'s."""
        surrogate, reset = self._bsnn_surrogate(), self.reset_mechanism
        # with no reset there is nothing to apply at once: the immediate and the delayed forms coincide
        immediate = not self.reset_delay and reset != "none"
        if zero_charged and reset == "zero":
            kind = SnnTorchSynapticZeroImmediate if immediate else SnnTorchSynapticZero
        else:
            kind = SnnTorchLeakyImmediate if immediate else SnnTorchLeaky
        return self.bsnn_cached(("lif", surrogate, kind, reset), lambda: kind(surrogate=surrogate, reset_mechanism=reset))

    def _bsnn_output_spikes(self, spikes: torch.Tensor) -> torch.Tensor:
        """The spikes as snnTorch returns them: times the graded factor under bifurcation dynamics (the
        engine's bifurcation spikes are 0/1), in snnTorch's dtype (its spike functions return float32, which
        the graded factor multiplies), whatever the input's."""
        if self.bsnn_settings.dynamics == "bifurcation":
            spikes = spikes * self.graded_spikes_factor
        return spikes.to(torch.promote_types(torch.float32, self.graded_spikes_factor.dtype))

    def _bsnn_membrane_keeps_input_dtype(self) -> bool:
        """True if no reset term promotes snnTorch's membrane (see ``_bsnn_native_state_dtype``)."""
        return self.reset_mechanism == "none"

    def _bsnn_native_state_dtype(self, dtype, params):
        # snnTorch starts the membrane as zeros_like(input); its reset term (the float32 spike mask of the
        # previous membrane) then promotes it to float32, and so do rates with a dimension. With no reset (and
        # Synaptic's in-place delayed reset to zero) and 0-d rates nothing does: it stays in the input's dtype.
        if self.bsnn_settings.dynamics == "lif" and self._bsnn_membrane_keeps_input_dtype():
            dimensioned = [v.dtype for v in params.values() if isinstance(v, torch.Tensor) and v.dim() > 0]
            for other in dimensioned:
                dtype = torch.promote_types(dtype, other)
            return dtype
        return super()._bsnn_native_state_dtype(dtype, params)

    def _bsnn_membrane_params(self, sample_shape) -> dict:
        params = {"beta": self.beta, "threshold": self.threshold, "graded": self.graded_spikes_factor}
        return {name: _trailing(value, sample_shape) for name, value in params.items()}

    # --- what the component asks of a neuron class -------------------------------------------------------
    def _bsnn_reset(self):
        # subtract -> soft reset, zero -> reset to 0; snnTorch's reset carries no gradient
        return (None if self.reset_mechanism == "subtract" else 0.0), True

    def _bsnn_threshold(self, sample_shape=None):
        return self.threshold if sample_shape is None else _trailing(self.threshold, sample_shape)

    def _bsnn_surrogate(self) -> Surrogate:
        spike_grad = self.spike_grad
        cached = self.__dict__.get("_bsnn_surrogate_of")
        if cached is None or cached[0] is not spike_grad:
            cached = (spike_grad, _surrogate_of(spike_grad)[0])
            self.__dict__["_bsnn_surrogate_of"] = cached
        return cached[1]


class ConvertedLeaky(ConvertedSnnTorchNeuron):
    """The mixin of a converted ``snntorch.Leaky`` (see the module docstring).

    Converted to the engine's LIF, a ``Leaky`` keeps its class name, its place in the user's loop and its spikes:

    >>> import snntorch as snn, bsnn_lightning as bl
    >>> _ = torch.manual_seed(0)
    >>> x = torch.rand(4, 2, 3) * 2  # [T, N, features]
    >>> def run(lif):  # snnTorch's own loop, explicit state
    ...     mem, spikes = lif.init_leaky(), []
    ...     for x_t in x:
    ...         spk, mem = lif(x_t, mem)
    ...         spikes.append(spk)
    ...     return torch.stack(spikes)
    >>> native = run(snn.Leaky(beta=0.5))
    >>> lif = bl.convert(torch.nn.Sequential(snn.Leaky(beta=0.5)), "lif")[0]
    >>> type(lif).__name__, isinstance(lif, ConvertedLeaky), isinstance(lif, snn.Leaky)
    ('Leaky', True, True)
    >>> int(native.sum()), torch.equal(run(lif), native)
    (11, True)
    """

    def forward(self, input_, mem=None):
        if self.init_hidden and mem is not None:
            raise TypeError("`mem` should not be passed as an argument while `init_hidden=True`")
        sequence = self.bsnn_settings.step_mode == "m"
        if self.bsnn_runs_library_code():
            return self._library_forward(input_, mem, sequence)
        seq, batched = self._bsnn_sequence(input_, sequence)
        fresh = self._bsnn_fresh(mem)
        state = self._bsnn_state("mem", mem, seq, batched)
        want_v_seq = sequence and (self.output or not self.init_hidden)
        # a new sequence starts from zeros as the number 0.0, which the engine broadcasts (no tensor of zeros to
        # allocate, fill and read back at every new sequence)
        out = self.bsnn_run(
            seq, 0.0 if state is None else state, fresh=fresh or state is None, return_v_seq=want_v_seq, single=not sequence
        )
        if not batched:
            out = out._replace(
                spikes=out.spikes.squeeze(1), v=out.v.reshape(()), v_seq=None if out.v_seq is None else out.v_seq.squeeze(1)
            )
        spikes = self._bsnn_output_spikes(out.spikes)
        self._buffers["mem"] = out.v
        self.__dict__["bsnn_fresh"] = False
        spk = spikes if sequence else spikes[0]
        mem_out = out.v_seq if want_v_seq else out.v
        if self.output:
            return spk, mem_out
        if self.init_hidden:
            return spk
        return spk, mem_out

    def _library_forward(self, input_, mem, sequence):
        """snnTorch's own ``Leaky.forward`` (see ``bsnn_runs_library_code``); a sequence runs step by step."""
        if not sequence:
            return snn_leaky().forward(self, input_) if mem is None else snn_leaky().forward(self, input_, mem)
        outputs = []
        for x_t in input_:
            out = snn_leaky().forward(self, x_t) if mem is None else snn_leaky().forward(self, x_t, mem)
            if not self.init_hidden or self.output:
                mem = out[1] if not self.init_hidden else None
            outputs.append(out)
        if self.init_hidden and not self.output:
            return torch.stack(outputs)
        return torch.stack([o[0] for o in outputs]), torch.stack([o[1] for o in outputs])

    def _bsnn_lif(self, sample_shape):
        return self._bsnn_leaky_lif(), self._bsnn_membrane_params(sample_shape)


class SnnTorchAdapter(Adapter):
    name = "snntorch"

    def owns(self, module: nn.Module) -> bool:
        snn = sys.modules.get("snntorch")
        if snn is None:
            return False
        if isinstance(module, snn.SpikingNeuron):
            return True
        # LeakyParallel is no SpikingNeuron (nor is a subclass of it); RLeaky's one-to-one weight is no neuron
        return any(c.__module__.startswith("snntorch._neurons") and c.__name__ not in _NOT_NEURONS for c in type(module).__mro__)

    def plan(self, module, settings: MethodSettings | None) -> Plan:
        if settings is None:
            check_restorable(module)
            return Plan(None)
        mixins = _mixins()
        cls = supported_base(module, "snntorch", tuple(mixins))
        if cls not in mixins:
            why = _REFUSED_BECAUSE.get(cls.__name__, "")
            raise ValueError(
                f"snntorch.{cls.__name__} is not supported by the snnTorch adapter{why} (supported: "
                f"{', '.join('snntorch.' + c.__name__ for c in mixins)}); keep the library's own neurons with "
                "backend='native', or build the model with those"
            )
        name = f"snntorch.{cls.__name__}"
        for flag in ("inhibition", "state_quant", "surrogate_disable"):
            if getattr(module, flag):
                raise ValueError(f"{name} with {flag} enabled is not supported by the engine; use backend='native'")
        if settings.dynamics == "bifurcation" and module.reset_mechanism == "none":
            raise ValueError(
                f"bifurcation dynamics fire and reset: a {cls.__name__} with reset_mechanism='none' cannot take them; "
                "use reset_mechanism 'subtract' (soft reset) or 'zero'"
            )
        if cls.__name__ == "RLeaky" and settings.dynamics == "lif" and settings.backend == "triton":
            raise ValueError(
                "snntorch.RLeaky with dynamics='lif' runs snnTorch's own step in PyTorch, not the engine (its recurrent "
                "current is added after the decayed membrane and the input, which one engine input per step cannot "
                "reproduce bit for bit), so backend='triton' cannot run it; use backend 'auto' or 'torch'"
            )
        return Plan(settings)

    def apply(self, module, plan: Plan):
        if plan.native:
            return restore_class(module)
        cls = equations_class(module)
        library_step = cls.__name__ == "RLeaky" and plan.settings.dynamics == "lif"  # the surrogate is snnTorch's own
        if _surrogate_of(module.spike_grad)[1] and not library_step:
            warn_autograd_surrogate(f"snntorch.{cls.__name__}", repr(getattr(module.spike_grad, "__qualname__", module.spike_grad)))
        convert_in_place(module, _mixins()[cls], plan.settings)
        module._bsnn_surrogate()  # looked up now, not at the first forward, which torch.compile may be tracing
        module.__dict__["bsnn_fresh"] = True
        shape = _membrane_sample_shape(module, plan.settings)
        if shape is not None:
            module.bsnn_materialize(shape, module._buffers["mem"].device)
        return module

    def known_sample_shape(self, module, settings: MethodSettings):
        shape = super().known_sample_shape(module, settings)
        return shape if shape is not None else _membrane_sample_shape(module, settings)

    def after_convert(self, model: nn.Module, step_mode: str | None) -> None:
        if step_mode == "m":
            _fold_time_between_neurons(model, self)
        elif step_mode == "s" or not any(
            isinstance(m, ConvertedSnnTorchNeuron) and m.bsnn_settings.step_mode == "m" for m in model.modules()
        ):
            _unfold(model)  # no neuron takes sequences any more (backend="native" included): the layers neither

    def reset(self, module) -> None:
        if hasattr(module, "reset_mem"):
            module.reset_mem()


def snn_leaky() -> type:
    """``snntorch.Leaky``, from snnTorch once something has imported it (the adapter never imports it itself).

    >>> import snntorch
    >>> snn_leaky() is snntorch.Leaky
    True
    """
    return sys.modules["snntorch"].Leaky


#: modules of snnTorch's neuron package that are parts of a neuron, not neurons
_NOT_NEURONS = ("RecurrentOneToOne",)

#: why a neuron class the engine cannot express is refused (the others are simply not supported yet)
_REFUSED_BECAUSE = {
    "Alpha": (
        ": its membrane is no state of its own (mem_t = tau_alpha (syn_exc_t + syn_inh_t), a function of two "
        "synaptic currents) and its reset acts on those currents, which the engine's one-state "
        "charge/fire/reset does not express"
    ),
}


def _mixins() -> dict[type, type]:
    """The snnTorch classes the adapter converts, each with its mixin."""
    snn = sys.modules["snntorch"]
    return {snn.Leaky: ConvertedLeaky, snn.Synaptic: ConvertedSynaptic, snn.RLeaky: ConvertedRLeaky}


def _surrogate_of(spike_grad) -> tuple[Surrogate, bool]:
    """The engine surrogate for an snnTorch ``spike_grad``, and whether it is a custom (autograd) one."""
    qualname = getattr(spike_grad, "__qualname__", "")
    if getattr(spike_grad, "__module__", "") == "snntorch.surrogate" and qualname.endswith(".<locals>.inner"):
        kind = qualname.split(".")[0]
        if kind in _SURROGATES:
            name, variable = _SURROGATES[kind]
            cells = dict(zip(spike_grad.__code__.co_freevars, (c.cell_contents for c in spike_grad.__closure__ or ())))
            if variable in cells:
                return Surrogate(name, float(cells[variable])), False
    return surrogate_from_function(spike_grad, f"snntorch:{qualname or type(spike_grad).__name__}"), True


def _membrane_sample_shape(module, settings: MethodSettings) -> tuple[int, ...] | None:
    """One sample's shape from the membrane ``[N, ...]`` an earlier per-step run left, or None."""
    mem = module._buffers["mem"]
    if settings.step_mode == "s" and mem.dim() >= 1 and mem.numel():
        return tuple(mem.shape[1:])
    return None


def _trailing(value, sample_shape: tuple[int, ...]):
    """snnTorch broadcasts beta/threshold against the membrane from the trailing dimensions, while the
    engine reads a 1-D parameter as one value per channel. Expand a non-scalar to one value per neuron to
    keep snnTorch's meaning (a view: the gradient still reaches the stored parameter)."""
    if not isinstance(value, torch.Tensor):
        return value
    if value.numel() == 1:
        return value.reshape(())
    if tuple(value.shape) == tuple(sample_shape):
        return value
    try:
        return value.expand(sample_shape)
    except RuntimeError:
        raise ValueError(
            f"snntorch.Leaky parameter of shape {list(value.shape)} does not broadcast against its input's "
            f"samples of shape {list(sample_shape)}"
        ) from None


def _same_tensor(a: torch.Tensor, b: torch.Tensor) -> bool:
    """The same membrane: the same tensor, or a view/detached copy sharing its storage."""
    if a is b:
        return True
    return a.shape == b.shape and a.numel() > 0 and a.data_ptr() == b.data_ptr()


# --- time folding for nn.Sequential models in step mode "m" --------------------------------------------------


def _fold_time_between_neurons(model: nn.Module, adapter: Adapter) -> None:
    for container in model.modules():
        if not isinstance(container, nn.Sequential):
            continue
        children = list(container.children())
        if not any(adapter.owns(c) for c in children):
            continue
        for child in children:
            if adapter.owns(child) or any(adapter.owns(m) for m in child.modules()):
                continue
            if not hasattr(child, "_bsnn_fold_handles"):
                child._bsnn_fold_handles = (
                    child.register_forward_pre_hook(_fold_input),
                    child.register_forward_hook(_unfold_output),
                )


def _unfold(model: nn.Module) -> None:
    for module in model.modules():
        handles = module.__dict__.pop("_bsnn_fold_handles", None)
        for handle in handles or ():
            handle.remove()


def _fold_input(module, args):
    x = args[0]
    if not isinstance(x, torch.Tensor) or x.dim() < 3:
        shape = list(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(
            f"in step mode 'm' the layer {type(module).__name__} between snnTorch neurons expects a sequence "
            f"[T, N, ...], got {shape}"
        )
    module._bsnn_steps = x.shape[0]
    return (x.flatten(0, 1), *args[1:])


def _unfold_output(module, args, output):
    return output.unflatten(0, (module.__dict__.pop("_bsnn_steps"), -1))


from .snntorch_neurons import ConvertedRLeaky, ConvertedSynaptic  # noqa: E402  (they build on ConvertedSnnTorchNeuron)

register_adapter(SnnTorchAdapter())
