"""The snnTorch adapter (tested with snnTorch 1.0): ``snntorch.Leaky`` runs on the multistep engine.

Supported: ``Leaky`` with every reset mechanism (subtract, zero, none), ``reset_delay`` True and False,
learnable ``beta`` (scalar or per neuron) and ``threshold``, graded spikes (learnable too), ``init_hidden``
on and off, ``output`` on and off. Every other snnTorch neuron (``Synaptic``, ``Alpha``, ``Lapicque``,
``RLeaky``, ``RSynaptic``, the LSTMs, ``LeakyParallel``, subclasses of ``Leaky``...) is refused with an
error naming its class, unless ``backend="native"`` leaves the model's neurons as they are. So are
``inhibition``, ``state_quant`` and ``surrogate_disable``, which the engine does not model.

Step modes. By default (``step_mode="s"``) a converted ``Leaky`` is called once per time step from the
user's own loop, exactly as before: ``spk, mem = lif(x_t, mem)`` or, with ``init_hidden=True``,
``spk = lif(x_t)``. With ``convert(..., step_mode="m")`` it takes the whole sequence ``[T, N, ...]`` in one
engine call, and the layers between neurons in an ``nn.Sequential`` get hooks that fold time into the batch
dimension (``[T, N, ...] -> [T * N, ...]`` and back), so ``net(x_seq)`` runs the whole model over time.
In that mode the membrane a neuron returns (``output=True``, or ``init_hidden=False``) is the sequence
``[T, N, ...]`` of its states, and ``lif.mem`` holds the last one. Batch norm between neurons then
normalises over all ``T x N`` samples of the sequence at once (as SpikingJelly's multi-step layers do),
where the per-step loop normalises each step's batch alone; in eval mode the two agree exactly.

Surrogates: snnTorch's ``atan(alpha)``, ``sigmoid(slope)`` and ``fast_sigmoid(slope)`` map to the engine's
formulas (``sigmoid`` is evaluated in the overflow-free form: where snnTorch's ``exp(-slope z)`` overflows
and its gradient is NaN, ours is the limit, 0). Any other ``spike_grad`` (``triangular``, ``custom_surrogate``,
a user's own function) still works: its derivative is taken from the function itself by autograd in the
reference backend, with one warning at conversion.

The learnable IMP starts a sequence: after ``reset_mem()``/``init_leaky()``, ``snntorch.utils.reset(net)``,
any other assignment to ``lif.mem``, a membrane of a new shape, or (explicit-state style) a ``mem``
argument that is not the membrane this neuron returned last (a detached copy of it still counts as the
same membrane). The sequence then starts from that membrane plus the IMP.
"""

from __future__ import annotations

import sys

import torch
from torch import nn

from ..engine import SnnTorchLeaky, SnnTorchLeakyImmediate, Surrogate
from ..engine.surrogates import surrogate_from_function
from ..neuron_params import MethodSettings
from . import Adapter, Plan, register_adapter
from .inplace import ConvertedNeuron, check_restorable, convert_in_place, library_class, restore_class, warn_autograd_surrogate

_SURROGATES = {"atan": ("atan", "alpha"), "sigmoid": ("sigmoid", "slope"), "fast_sigmoid": ("fast_sigmoid", "slope")}


class ConvertedLeaky(ConvertedNeuron):
    """The mixin of a converted ``snntorch.Leaky`` (see the module docstring)."""

    def __setattr__(self, name, value):
        if name == "mem":  # a reset or a state set from outside: the next call starts a sequence
            self.__dict__["bsnn_fresh"] = True
        super().__setattr__(name, value)

    def forward(self, input_, mem=None):
        if self.init_hidden and mem is not None:
            raise TypeError("`mem` should not be passed as an argument while `init_hidden=True`")
        sequence = self.bsnn_settings.step_mode == "m"
        if self.bsnn_runs_library_code():
            return self._library_forward(input_, mem, sequence)
        seq = input_ if sequence else input_.unsqueeze(0)
        batched = seq.dim() >= 2  # a 0-d step (or a 1-d sequence [T]) is one sample of shape [] to the engine
        if sequence and seq.dim() < 1:
            raise ValueError(f"converted snntorch.Leaky in step_mode='m' expected input [T, ...], got {list(input_.shape)}")
        if not batched:
            seq = seq.unsqueeze(1)
        state = self.mem if mem is None else mem
        fresh = self.bsnn_fresh or (mem is not None and not _same_tensor(mem, self._buffers["mem"]))
        if tuple(state.shape) != (tuple(seq.shape[1:]) if batched else ()):
            state, fresh = torch.zeros_like(seq[0]), True
        elif not batched:
            state = state.reshape(1)
        want_v_seq = sequence and (self.output or not self.init_hidden)
        out = self.bsnn_run(seq, state, fresh=fresh, return_v_seq=want_v_seq, single=not sequence)
        if not batched:
            out = out._replace(
                spikes=out.spikes.squeeze(1), v=out.v.reshape(()), v_seq=None if out.v_seq is None else out.v_seq.squeeze(1)
            )
        bifurcation = self.bsnn_settings.dynamics == "bifurcation"
        spikes = out.spikes * self.graded_spikes_factor if bifurcation else out.spikes
        self._buffers["mem"] = out.v
        self.__dict__["bsnn_fresh"] = False
        spk = spikes if sequence else spikes[0]
        mem_out = out.v_seq if want_v_seq else out.v
        if self.output:
            return spk, mem_out
        if self.init_hidden:
            return spk
        return spk, mem_out

    def __setstate__(self, state):
        super().__setstate__(state)
        self._bsnn_surrogate()  # the lookup is not pickled; redo it now rather than in a traced forward

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

    # --- what the component asks of a neuron class -------------------------------------------------------
    def _bsnn_lif(self, sample_shape):
        surrogate, reset = self._bsnn_surrogate(), self.reset_mechanism
        # with no reset there is nothing to apply at once: the immediate and the delayed forms coincide
        immediate = not self.reset_delay and reset != "none"
        dynamics = self.bsnn_cached(
            ("lif", surrogate, reset, immediate),
            lambda: (SnnTorchLeakyImmediate if immediate else SnnTorchLeaky)(surrogate=surrogate, reset_mechanism=reset),
        )
        params = {"beta": self.beta, "threshold": self.threshold, "graded": self.graded_spikes_factor}
        return dynamics, {name: _trailing(value, sample_shape) for name, value in params.items()}

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


class SnnTorchAdapter(Adapter):
    name = "snntorch"

    def owns(self, module: nn.Module) -> bool:
        snn = sys.modules.get("snntorch")
        if snn is None:
            return False
        return isinstance(module, snn.SpikingNeuron) or type(module).__module__.startswith("snntorch._neurons")

    def plan(self, module, settings: MethodSettings | None) -> Plan:
        if settings is None:
            check_restorable(module)
            return Plan(None)
        snn = sys.modules["snntorch"]
        cls = library_class(module)
        if cls is not snn.Leaky:
            raise ValueError(
                f"snntorch.{cls.__name__} is not supported by the snnTorch adapter (supported: "
                "snntorch.Leaky); keep the library's own neurons with backend='native', or build the model with Leaky"
            )
        for flag in ("inhibition", "state_quant", "surrogate_disable"):
            if getattr(module, flag):
                raise ValueError(f"snntorch.Leaky with {flag} enabled is not supported by the engine; use backend='native'")
        if settings.dynamics == "bifurcation" and module.reset_mechanism == "none":
            raise ValueError(
                "bifurcation dynamics fire and reset: a Leaky with reset_mechanism='none' cannot take them; "
                "use reset_mechanism 'subtract' (soft reset) or 'zero'"
            )
        return Plan(settings)

    def apply(self, module, plan: Plan):
        if plan.native:
            return restore_class(module)
        if _surrogate_of(module.spike_grad)[1]:
            warn_autograd_surrogate("snntorch.Leaky", repr(getattr(module.spike_grad, "__qualname__", module.spike_grad)))
        convert_in_place(module, ConvertedLeaky, plan.settings)
        module._bsnn_surrogate()  # looked up now, not at the first forward, which torch.compile may be tracing
        module.__dict__["bsnn_fresh"] = True
        mem = module._buffers["mem"]
        if plan.settings.step_mode == "s" and mem.dim() >= 1 and mem.numel():
            module.bsnn_materialize(tuple(mem.shape[1:]), mem.device)  # a membrane [N, ...] from an earlier run
        return module

    def after_convert(self, model: nn.Module, step_mode: str | None) -> None:
        if step_mode == "m":
            _fold_time_between_neurons(model, self)
        elif step_mode == "s":
            _unfold(model)

    def reset(self, module) -> None:
        if hasattr(module, "reset_mem"):
            module.reset_mem()


def snn_leaky() -> type:
    return sys.modules["snntorch"].Leaky


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


register_adapter(SnnTorchAdapter())
