"""The ``triton`` backend: the multistep engine's loop fused into one Triton kernel forward, one backward.

``supports`` says whether a call can run here (and why not, so that ``"auto"`` falls back to ``"torch"``);
``run`` is the backend entry point. Both kernels (:mod:`.triton_kernels`) are behind two
``torch.library`` custom ops, ``bsnn::triton_multistep`` and ``bsnn::triton_multistep_backward``, with
their autograd and fake (meta) implementations registered, so ``torch.compile`` sees the neuron as one
opaque node and needs no graph break inside it.

What runs here: the dynamics classes of the table ``_FUSED`` (:class:`SpikingJellyLIF`,
:class:`SpikingJellyIF`, :class:`SpikingJellyPLIF`, SpikingJelly 0.0.0.0.14's product form
:class:`SpikingJelly014LIF` and :class:`SpikingJelly014PLIF`, :class:`SnnTorchLeaky` and
:class:`SnnTorchLeakyImmediate`, :class:`SnnTorchSynapticZero` and :class:`SnnTorchSynapticZeroImmediate`, and
:class:`DiagonalBifurcation`), with the built-in surrogates, fp32 / bf16 / fp16 inputs (the state in fp32, or
in the input's 16-bit dtype where a library keeps it there: ``_STATE16``, rounded as PyTorch's eager ops round
on the tensors' device, ``ROUNDING_RULE``),
every accepted shape of ``v0`` and of the parameters; and :class:`CoupledBifurcation`, whose matrix mixes the
channels of a position at every step, with kernels and custom ops of its own (:mod:`.triton_coupled`, a kernel
family that adds its row to ``_FUSED``), for any number of channels. What does not, with the reason
``supports`` gives: any other class (a user's subclass too: it changes the equations), user-registered
surrogates, ``relaxed`` dynamics (the reference backend's gradcheck device) and float64 (its gradcheck dtype).
An explicit ``backend="triton"`` for such a call raises that reason; ``"auto"`` runs it on ``"torch"``.

Fusing a new dynamics: its class in :mod:`.dynamics`, one row of ``_FUSED`` (its ``KIND`` code in
:mod:`.triton_codes`, its first parameter, or the value computed from the parameters that the kernels take
instead (``p0_from``: SpikingJelly 0.0.0.0.14's decay factor), how its reset and flags are read), and its
branches in the kernels' ``_charge``, ``_fire``, ``_reset`` and ``_backward_step``.

Triton is optional and imported on the first call that needs it. On CPU tensors the kernels run only
through Triton's interpreter (``TRITON_INTERPRET=1`` in the environment; :mod:`.triton_mode` has the rule
and when it is fixed), which is how the test suite checks them without a GPU; ``"auto"`` never picks this
backend off CUDA. Every launch is a :class:`LaunchPlan` (:func:`launch_plan`, :func:`backward_launch_plan`):
the custom ops build one and launch it, ``bench/kernels_static.py`` compiles the same plans for a GPU.
The backward saves nothing but x and, for T > 16, a checkpoint of the state every 16 steps: it recomputes
the membrane from x (see ``docs/kernels.md`` for the memory traffic this buys).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple, Optional

import torch
from torch import Tensor

from . import surrogates
from . import triton_codes as codes
from .backends import register_backend
from . import dynamics as dyn
from .dynamics import Dynamics
from .reference import _as_compute, _sum_to_shape

#: the backward recomputes the membrane from a state checkpoint every this many steps, keeping that many
#: charged potentials per neuron in registers (the forward writes the checkpoints when T is longer)
CHECKPOINT_EVERY = 16
#: GPU launch shapes. Forward: ``_forward_vec`` (at most FORWARD_VEC = 4) neurons per thread, CHUNK steps
#: unrolled, the chunk's x read into registers before its first store. Backward: one neuron per thread, so that
#: its [CHUNK, BLOCK] register tiles need no data exchange between threads. Both checked on the compiled sm_90
#: code (``bench/kernels_static.py``): no shared memory, no local memory, no spills.
FORWARD_VEC, FORWARD_CHUNK, BACKWARD_BLOCK, NUM_WARPS = 4, 8, 128, 4
#: neurons per program under Triton's interpreter (large: each program is a Python loop of numpy calls)
INTERPRETER_BLOCK = 4096
#: the launch constants ``bench/gpu_check.py`` sweeps on a GPU (the backward keeps one neuron per thread, so
#: its block is 32 x the warps); the fastest per GPU architecture and dtype goes to :data:`TUNING_FILE`
LAUNCH_CANDIDATES = [
    {"FORWARD_CHUNK": chunk, "NUM_WARPS": warps, "BACKWARD_BLOCK": 32 * warps} for chunk in (4, 8, 16) for warps in (2, 4, 8)
]
#: measured launch constants, ``{"sm_90": {"bf16": {...}, "fp32": {...}}}``; absent: the defaults above
TUNING_FILE = Path(__file__).with_name("triton_tuning.json")


class _Config(NamedTuple):
    """The static choices of a call, as the custom ops take them (plain ints, bools and floats, in this
    order after the tensors; ``_define_ops`` checks the ops' signatures against these fields)."""

    kind: int  # triton_codes: LIF, SNNTORCH_LEAKY, ...
    reset: int  # triton_codes: RESET_SOFT, RESET_HARD, RESET_SUBTRACT, RESET_ZERO, RESET_NONE, RESET_ZERO_CHARGED
    surrogate: int  # triton_codes: SG_ATAN, ...
    sg_a: float  # the surrogate's two host-computed constants
    sg_b: float
    decay_input: bool = False
    detach_reset: bool = False
    v_reset: float = 0.0  # the hard reset's value (0 for a soft one: SpikingJelly charges towards 0 then)
    lo: float = 0.0  # DiagonalBifurcation's eigenvalue bounds
    hi: float = 0.0
    state: int = codes.ROUND_FP32  # the state's dtype: ROUND_FP32, or the 16-bit dtype a library keeps it in
    spike_round: int = codes.ROUND_FP32  # the 16-bit dtype graded spikes are rounded to (x's), if any
    cuda_rule: bool = False  # round as PyTorch's CUDA kernels do (else as its CPU kernels do)
    p0_scalar: bool = False  # p0 is a Python float (a CPU scalar to PyTorch), not a tensor
    p2_scalar: bool = False  # likewise p2

    @classmethod
    def of(cls, dynamics: Dynamics) -> "_Config":
        """The choices the dynamics fixes (a float32 state, the CPU's rounding); :meth:`for_call` adds the call's."""
        fused = _FUSED[type(dynamics)]
        surrogate = _SURROGATES[dynamics.surrogate.name]
        sg_a, sg_b = surrogate.constants(dynamics.surrogate.alpha)
        return cls(fused.kind, surrogate=surrogate.code, sg_a=sg_a, sg_b=sg_b, **fused.settings(dynamics))

    def for_call(self, dynamics: Dynamics, x: Tensor, params: dict) -> "_Config":
        """With the state's dtype, the device's rounding rule and which parameters are Python floats."""
        fused = _FUSED[type(dynamics)]
        return self._replace(
            state=_ROUNDING[dynamics.compute_dtype(x.dtype)],
            spike_round=_ROUNDING[x.dtype] if fused.p2 is not None else codes.ROUND_FP32,  # graded spikes
            cuda_rule=_cuda_rule(x),
            p0_scalar=fused.p0 is not None and fused.p0_from is None and not isinstance(params[fused.p0], Tensor),
            p2_scalar=fused.p2 is not None and not isinstance(params[fused.p2], Tensor),
        )


@dataclass(frozen=True)
class _Fused:
    """How the kernels run one dynamics class."""

    kind: int  #: its KIND code (triton_codes)
    p0: str | None  #: the parameter passed as p0 (None: it has none); p1 is always "threshold"
    #: the reset code and the other _Config fields it sets, read from the dynamics object
    settings: Callable[[Dynamics], dict]
    p2: str | None = None  #: the parameter passed as p2 (snnTorch's graded factor)
    #: p0 is not the parameter itself but this value the dynamics computes from the parameters (as the step
    #: arithmetic takes them), on the host with the reference's own expression; its gradient reaches the
    #: parameter through autograd
    p0_from: Callable[[Dynamics, dict], "float | Tensor"] | None = None
    #: the entry point (``run``'s signature) of the kernel family that runs this class, when it is not this
    #: module's elementwise kernels: :func:`.triton_coupled.run` for the coupled bifurcation, whose matrix mixes
    #: channels (that module adds its row, its launcher building on this one's helpers)
    run: Callable[..., tuple] | None = None


def _fire_then_reset(dynamics) -> dict:
    """SpikingJelly's and the bifurcation's reset: soft (``v_reset=None``) or hard to ``v_reset``."""
    if dynamics.v_reset is None:
        return dict(reset=codes.RESET_SOFT, detach_reset=dynamics.detach_reset)
    return dict(reset=codes.RESET_HARD, v_reset=float(dynamics.v_reset), detach_reset=dynamics.detach_reset)


def _spikingjelly_lif(dynamics) -> dict:
    return dict(_fire_then_reset(dynamics), decay_input=dynamics.decay_input)


_SNNTORCH_RESETS = {"subtract": codes.RESET_SUBTRACT, "zero": codes.RESET_ZERO, "none": codes.RESET_NONE}


def _snntorch_leaky(dynamics) -> dict:
    return dict(reset=_SNNTORCH_RESETS[dynamics.reset_mechanism])


def _snntorch_zero_charged(dynamics) -> dict:
    """snnTorch Synaptic's reset to zero of the charged membrane (its only reset mechanism)."""
    return dict(reset=codes.RESET_ZERO_CHARGED)


def _diagonal_bifurcation(dynamics) -> dict:
    lo, hi = dynamics.bounds
    return dict(_fire_then_reset(dynamics), lo=lo, hi=hi)


#: the one table of what the kernels fuse, keyed by the exact dynamics class
_FUSED: dict[type, _Fused] = {
    dyn.SpikingJellyLIF: _Fused(codes.LIF, "tau", _spikingjelly_lif),
    dyn.SpikingJellyPLIF: _Fused(codes.PLIF, "q", _spikingjelly_lif),
    dyn.SpikingJellyIF: _Fused(codes.IF, None, _fire_then_reset),
    dyn.SnnTorchLeaky: _Fused(codes.SNNTORCH_LEAKY, "beta", _snntorch_leaky, p2="graded"),
    dyn.SnnTorchLeakyImmediate: _Fused(codes.SNNTORCH_IMMEDIATE, "beta", _snntorch_leaky, p2="graded"),
    dyn.SnnTorchSynapticZero: _Fused(codes.SNNTORCH_LEAKY, "beta", _snntorch_zero_charged, p2="graded"),
    dyn.SnnTorchSynapticZeroImmediate: _Fused(codes.SNNTORCH_IMMEDIATE, "beta", _snntorch_zero_charged, p2="graded"),
    dyn.SpikingJelly014LIF: _Fused(codes.PRODUCT_DECAY, "tau", _fire_then_reset, p0_from=dyn.SpikingJelly014LIF.decay),
    dyn.SpikingJelly014PLIF: _Fused(codes.PRODUCT_DECAY, "q", _fire_then_reset, p0_from=dyn.SpikingJelly014PLIF.decay),
    dyn.DiagonalBifurcation: _Fused(codes.DIAGONAL_BIFURCATION, "eigenvalues", _diagonal_bifurcation),
    # CoupledBifurcation: added by .triton_coupled, its own kernel family
}


class _Surrogate(NamedTuple):
    code: int  #: its SURROGATE code (triton_codes)
    function: object  #: the built-in entry of surrogates._REGISTRY the kernel reproduces
    constants: Callable[[float], tuple[float, float]]  #: alpha -> (sg_a, sg_b), in double as surrogates.py


_SURROGATES = {
    "atan": _Surrogate(codes.SG_ATAN, surrogates._atan, lambda a: (math.pi / 2 * a, a / 2)),
    "sigmoid": _Surrogate(codes.SG_SIGMOID, surrogates._sigmoid, lambda a: (a * math.log2(math.e), a)),
    "fast_sigmoid": _Surrogate(codes.SG_FAST_SIGMOID, surrogates._fast_sigmoid, lambda a: (a, 0.0)),
    "triangle": _Surrogate(codes.SG_TRIANGLE, surrogates._triangle, lambda a: (a * a, a)),
}
_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
#: the kernels' rounding code of each state (and spike) dtype
_ROUNDING = {torch.float32: codes.ROUND_FP32, torch.float16: codes.ROUND_FP16, torch.bfloat16: codes.ROUND_BF16}
_STATE_DTYPES = {code: dtype for dtype, code in _ROUNDING.items()}
#: the kinds whose kernels keep a 16-bit state (with the resets snnTorch keeps one under): a library's membrane
#: that stays in the input's 16-bit dtype (SpikingJelly's LIF, PLIF and IF; snnTorch's Leaky without a reset,
#: Synaptic's reset to zero)
_STATE16 = {
    codes.LIF: None, codes.PLIF: None, codes.IF: None,
    codes.SNNTORCH_LEAKY: (codes.RESET_NONE, codes.RESET_ZERO_CHARGED),
}  # fmt: skip
#: PyTorch's rounding rule the kernels follow: None, the tensors' device's (CUDA's on a GPU, the CPU's under
#: the interpreter); "cuda" or "cpu" forces one (the tests run CUDA's under the interpreter)
ROUNDING_RULE: str | None = None


def _cuda_rule(x: Tensor) -> bool:
    """Whether the kernels round as PyTorch's CUDA kernels do: a Python-float divisor is a multiply by its float32
    reciprocal, and a tensor operand is loaded in the op's 16-bit dtype (see docs/kernels.md, "Exactness")."""
    if ROUNDING_RULE not in (None, "cuda", "cpu"):
        raise ValueError(f"expected ROUNDING_RULE None, 'cuda' or 'cpu', got {ROUNDING_RULE!r}")
    return x.device.type == "cuda" if ROUNDING_RULE is None else ROUNDING_RULE == "cuda"


def supports(x: Tensor, dynamics: Dynamics) -> str | None:
    """None if this backend can run the call, else the reason it cannot.

    >>> from bsnn_lightning.engine import SpikingJellyLIF
    >>> supports(torch.zeros(2, 1, 3, dtype=torch.float64), SpikingJellyLIF())
    'expected x of dtype float32, bfloat16 or float16, got torch.float64 (the torch backend runs it)'
    """
    if not _HAS_CUSTOM_OPS:
        return f"the triton backend needs torch >= 2.4 (torch.library.custom_op), got torch {torch.__version__}"
    reason = _dynamics_reason(dynamics)
    if reason is not None:
        return reason
    if x.dtype not in _DTYPES:
        return f"expected x of dtype float32, bfloat16 or float16, got {x.dtype} (the torch backend runs it)"
    reason = _state_reason(x, dynamics)
    if reason is not None:
        return reason
    if x.device.type not in ("cuda", "cpu"):
        return f"expected x on a CUDA device (or the CPU under Triton's interpreter), got {x.device}"
    try:
        kernels = _kernels()
    except ImportError as error:
        return f"triton is not installed ({error}); install the extra: pip install 'bsnn-lightning[triton]'"
    if x.device.type == "cpu" and not _interpreted(kernels):
        return (
            "x is on the CPU; Triton kernels run on CUDA GPUs, or on the CPU through Triton's interpreter "
            "(set TRITON_INTERPRET=1 in the environment before Triton is first imported: see "
            "bsnn_lightning.engine.triton_mode)"
        )
    return None


def run(
    x: Tensor, v0: Tensor, dynamics: Dynamics, params: dict[str, "float | Tensor"], return_v_seq: bool
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Backend entry point; arguments already validated and broadcast by :func:`engine.multistep`.

    It returns what the reference does: spikes, the final state and (asked for) the states. An empty batch
    launches nothing, so it runs anywhere (a call with neurons runs the kernels: on a GPU, or interpreted):

    >>> from bsnn_lightning.engine import SpikingJellyLIF
    >>> x, v0 = torch.zeros(3, 0, 4), torch.zeros(0, 4)  # T = 3, no samples
    >>> spikes, v, v_seq = run(x, v0, SpikingJellyLIF(), {"tau": 2.0, "threshold": 1.0}, return_v_seq=True)
    >>> spikes.shape, v.shape, v_seq.shape
    (torch.Size([3, 0, 4]), torch.Size([0, 4]), torch.Size([3, 0, 4]))
    """
    family = _FUSED[type(dynamics)].run
    if family is not None:  # a kernel family of its own
        return family(x, v0, dynamics, params, return_v_seq)
    config, (p0, p1, p2) = _call(x, dynamics, params)
    save = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (x, v0, p0, p1, p2)
    )
    spikes, v_final, v_seq, _ = torch.ops.bsnn.triton_multistep(x, v0, p0, p1, p2, *config, return_v_seq, save)
    return spikes, v_final, (v_seq if return_v_seq else None)


def _operands(dynamics: Dynamics, params: dict[str, "float | Tensor"], x: Tensor):
    """The kernels' p0, p1 (the threshold) and p2, as tensors (None where the dynamics has none)."""
    fused = _FUSED[type(dynamics)]
    if fused.p0_from is not None:  # the parameters as the reference's float32 step arithmetic takes them
        p0 = _as_tensor(fused.p0_from(dynamics, _as_compute(params, torch.float32)), x)
    else:
        p0 = _as_tensor(params[fused.p0], x) if fused.p0 is not None else None
    p1 = _as_tensor(params["threshold"], x)
    p2 = _as_tensor(params[fused.p2], x) if fused.p2 is not None else None
    return p0, p1, p2


def _state_reason(x: Tensor, dynamics: Dynamics) -> str | None:
    """None if the kernels keep the state this call asks for: float32 (the default for any input), or a
    library's 16-bit membrane in x's own dtype for the kinds of ``_STATE16``."""
    state = dynamics.compute_dtype(x.dtype)
    if state == torch.promote_types(x.dtype, torch.float32):
        return None
    what = f"a {state} state for {x.dtype} input"
    if state not in (torch.float16, torch.bfloat16) or state != x.dtype:
        return f"the kernels keep a float32 state, or a 16-bit one in the input's own dtype; this call asks for {what}"
    if _FUSED[type(dynamics)].run is not None:  # a kernel family of its own (the coupled bifurcation)
        return f"the {type(dynamics).__name__} kernels keep a float32 state; this call asks for {what}"
    config = _Config.of(dynamics)
    resets = _STATE16.get(config.kind, ())
    if config.kind not in _STATE16 or (resets is not None and config.reset not in resets):
        return (
            f"the kernels keep a 16-bit state for SpikingJelly's LIF, PLIF and IF and snnTorch's membrane without a "
            f"reset term; {type(dynamics).__name__} with this reset asks for {what}"
        )
    return None


def _check_16_bit_params(dynamics: Dynamics, params: dict, x: Tensor) -> None:
    """A 16-bit state stays 16-bit only while no dimensioned tensor of another dtype enters its arithmetic
    (PyTorch would promote it); the adapters never ask for one (their state then follows the promotion)."""
    for name, value in params.items():
        if isinstance(value, Tensor) and value.dim() > 0 and value.dtype != x.dtype:
            raise ValueError(
                f"{type(dynamics).__name__} keeps a {x.dtype} state, but its parameter {name!r} is a {value.dtype} "
                f"tensor of shape {list(value.shape)}, which promotes the state in PyTorch's arithmetic; pass it "
                f"per layer (a float or a 0-d tensor) or in {x.dtype}, or run with state_dtype='float32'"
            )


def _dynamics_reason(dynamics: Dynamics) -> str | None:
    kind = type(dynamics)
    if kind not in _FUSED:
        fused = sorted(t.__name__ for t in _FUSED)
        return f"the triton backend fuses {fused}, got {kind.__name__} (the torch backend runs it)"
    if dynamics.relaxed:
        return "relaxed dynamics (the smooth forward used for gradcheck) run on the torch backend only"
    name = dynamics.surrogate.name
    builtin = _SURROGATES.get(name)
    if builtin is None or surrogates._REGISTRY[name][0] is not builtin.function:
        return (
            f"surrogate {name!r} is user-registered; the kernels compute the built-in "
            f"{sorted(_SURROGATES)} (the torch backend runs any registered surrogate)"
        )
    return None


def _as_tensor(value: "float | Tensor", x: Tensor) -> Tensor:
    if isinstance(value, Tensor):
        return value
    return torch.full((), value, dtype=torch.float32, device=x.device)


# --- the launch plan -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LaunchPlan:
    """One kernel launch, fully decided: the kernel, its grid, its arguments (tensors and runtime scalars, in the
    kernel's order), its compile-time constants and warps, and the output buffers the launch fills. The custom
    ops launch nothing else (:meth:`launch`); ``bench/kernels_static.py`` compiles exactly these for a GPU.
    ``kernel`` is None when there is nothing to launch (an empty batch): :meth:`launch` returns the outputs.

    >>> from bsnn_lightning.engine import SpikingJellyLIF
    >>> x, v0 = torch.rand(5, 2, 8), torch.zeros(2, 8)  # x [T, N, features], the state [N, features]
    >>> plan = launch_plan(x, v0, SpikingJellyLIF(), {"tau": 2.0, "threshold": 1.0}, return_v_seq=True)
    >>> plan.kernel_name, [tuple(t.shape) for t in plan.outputs]  # spikes, v_final, v_seq, no checkpoints
    ('multistep_forward_kernel', [(5, 2, 8), (2, 8), (5, 2, 8), (0,)])
    >>> plan.constexprs["STORE_V_SEQ"], plan.args[0] is x
    (True, True)
    """

    kernel: object  #: the ``@triton.jit`` function (an interpreted one under Triton's interpreter)
    grid: tuple[int, ...]
    args: tuple = ()
    constexprs: dict = field(default_factory=dict)  #: name -> value, passed by keyword
    num_warps: int = NUM_WARPS
    device: torch.device | None = None
    interpreted: bool = False
    outputs: tuple = ()

    @classmethod
    def nothing(cls, outputs: tuple) -> "LaunchPlan":
        return cls(None, (0,), outputs=outputs)

    @property
    def kernel_name(self) -> str | None:
        return None if self.kernel is None else self.kernel.fn.__name__

    def launch(self) -> tuple:
        """Launch on the outputs' device (Triton launches on the current one) and return the outputs."""
        if self.kernel is not None:
            on_device = self.device is not None and self.device.type == "cuda" and not self.interpreted
            with torch.cuda.device(self.device) if on_device else contextlib.nullcontext():
                self.kernel[self.grid](
                    *self.args, **self.constexprs, num_warps=self.num_warps, enable_fp_fusion=False
                )
        return self.outputs


def launch_plan(
    x: Tensor, v0: Tensor, dynamics: Dynamics, params: dict[str, "float | Tensor"], *, return_v_seq: bool = False,
    save: bool = False,
) -> LaunchPlan:  # fmt: skip
    """The forward kernel's launch for a call of :func:`run` (x, v0 and the parameters as ``engine.multistep``
    hands them over; ``save``: write the state checkpoints a backward needs), without launching it.

    The coupled bifurcation has a kernel family of its own: :func:`.triton_coupled.launch_plan`. An empty batch
    plans no launch (and needs no Triton); its outputs are spikes, v_final, v_seq and the checkpoints:

    >>> from bsnn_lightning.engine import SpikingJellyLIF
    >>> plan = launch_plan(torch.zeros(3, 0, 4), torch.zeros(()), SpikingJellyLIF(), {"tau": 2.0, "threshold": 1.0})
    >>> plan.kernel_name, [tuple(t.shape) for t in plan.launch()]
    (None, [(3, 0, 4), (0, 4), (0,), (0,)])
    """
    config, (p0, p1, p2) = _call(x, dynamics, params)
    return _forward_plan(x, v0, p0, p1, p2, config, return_v_seq, save)


def backward_launch_plan(
    x: Tensor, v0: Tensor, dynamics: Dynamics, params: dict[str, "float | Tensor"], *, checkpoints: Tensor,
    grad_spikes: Tensor | None = None, grad_v_final: Tensor | None = None, grad_v_seq: Tensor | None = None,
    needs: tuple[bool, bool, bool, bool, bool] = (True, False, False, False, False),
) -> LaunchPlan:  # fmt: skip
    """The backward kernel's launch for the same call: ``checkpoints`` the forward's (its plan's
    ``outputs[3]``), the gradients arriving at (spikes, v_final, v_seq), ``needs`` the flags of the gradients
    wanted for (x, v0, p0, the threshold, p2).

    >>> from bsnn_lightning.engine import SnnTorchLeaky
    >>> x, v0 = torch.rand(5, 2, 8), torch.zeros(2, 8)
    >>> params = {"beta": 0.9, "threshold": 1.0, "graded": 1.0}
    >>> checkpoints = launch_plan(x, v0, SnnTorchLeaky(), params, save=True).outputs[3]
    >>> grad = torch.ones_like(x)  # arriving at the spikes
    >>> plan = backward_launch_plan(x, v0, SnnTorchLeaky(), params, checkpoints=checkpoints, grad_spikes=grad)
    >>> plan.kernel_name, plan.constexprs["NEED_X"], plan.constexprs["NEED_V0"]
    ('multistep_backward_kernel', True, False)
    """
    config, (p0, p1, p2) = _call(x, dynamics, params)
    grads = (grad_spikes, grad_v_final, grad_v_seq)
    return _backward_plan(grads, x, v0, p0, p1, p2, checkpoints, config, tuple(needs))


def _call(x: Tensor, dynamics: Dynamics, params: dict) -> tuple[_Config, tuple]:
    """The static choices and the (p0, p1, p2) operands of a call, checked: what :func:`run` hands the ops."""
    if _FUSED[type(dynamics)].run is not None:
        raise TypeError(
            f"{type(dynamics).__name__} runs on a kernel family of its own; its launches are planned there "
            "(triton_coupled.launch_plan)"
        )
    config = _Config.of(dynamics).for_call(dynamics, x, params)
    if config.state != codes.ROUND_FP32:
        _check_16_bit_params(dynamics, params, x)
    return config, _operands(dynamics, params, x)


# --- the custom ops -----------------------------------------------------------------------------------


def _forward_impl(
    x: Tensor, v0: Tensor, p0: Optional[Tensor], p1: Tensor, p2: Optional[Tensor],
    kind: int, reset: int, surrogate: int, sg_a: float, sg_b: float,
    decay_input: bool, detach_reset: bool, v_reset: float, lo: float, hi: float,
    state: int, spike_round: int, cuda_rule: bool, p0_scalar: bool, p2_scalar: bool,
    return_v_seq: bool, save: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:  # fmt: skip
    """Forward: (spikes [T, N, ...] in x's dtype, v_final [N, ...], v_seq or empty, checkpoints), the states in
    the state's dtype (float32, or a library's 16-bit one).

    p0 is tau, beta, the eigenvalues, q or a decay factor (None for IF), p1 the threshold, p2 the graded factor
    (snnTorch)."""
    config = _Config(kind, reset, surrogate, sg_a, sg_b, decay_input, detach_reset, v_reset, lo, hi, state,
                     spike_round, cuda_rule, p0_scalar, p2_scalar)  # fmt: skip
    return _forward_plan(x, v0, p0, p1, p2, config, return_v_seq, save).launch()


def _forward_plan(
    x: Tensor, v0: Tensor, p0: Optional[Tensor], p1: Tensor, p2: Optional[Tensor], config: _Config,
    return_v_seq: bool, save: bool,
) -> LaunchPlan:  # fmt: skip
    """The forward kernel's launch, its output buffers allocated (:func:`_forward_impl` launches it)."""
    steps, state_shape = x.shape[0], x.shape[1:]
    state_dtype = _STATE_DTYPES[config.state]
    spikes = _empty(x.shape, x.dtype, x.device)
    v_final = _empty(state_shape, state_dtype, x.device)
    v_seq = _empty(x.shape if return_v_seq else (0,), state_dtype, x.device)
    ckpt = _empty(_checkpoint_shape(x.shape, save), state_dtype, x.device)
    outputs = (spikes, v_final, v_seq, ckpt)
    layout = _Layout.of(x)
    if layout.neurons == 0:
        return LaunchPlan.nothing(outputs)
    kernels = _kernels()
    x, v0, p1 = x.contiguous(), v0.contiguous(), p1.contiguous()
    p0 = p1 if p0 is None else p0.contiguous()  # unused by IF: any pointer will do
    p2 = p1 if p2 is None else p2.contiguous()
    interpreted = _interpreted(kernels)
    launch = _launch(x, interpreted)
    vec = _forward_vec(layout.neurons)
    block = _interpreter_block(layout.neurons) if interpreted else vec * 32 * launch["NUM_WARPS"]
    chunk = min(_next_power_of_2(steps), launch["FORWARD_CHUNK"])
    c = config
    return LaunchPlan(
        kernels.multistep_forward_kernel, (_cdiv(layout.neurons, block),),
        args=(
            x, v0, p0, p1, p2,
            spikes, v_final, v_seq if return_v_seq else v_final, ckpt if ckpt.numel() else v_final,
            steps, layout.neurons, layout.sample, layout.inner, layout.channels,
            c.v_reset, c.lo, c.hi,
        ),
        constexprs=dict(
            KIND=c.kind, RESET=c.reset, DECAY_INPUT=c.decay_input,
            V0_MODE=_mode(v0, x, allow_full=True), P0_MODE=_mode(p0, x), P1_MODE=_mode(p1, x),
            P2_MODE=_mode(p2, x),
            STORE_V_SEQ=return_v_seq, SAVE_CKPT=ckpt.numel() > 0, CKPT_EVERY=CHECKPOINT_EVERY,
            STATE=c.state, SPIKE_ROUND=c.spike_round, CUDA_RULE=c.cuda_rule, P0_SCALAR=c.p0_scalar,
            P2_SCALAR=c.p2_scalar,
            CHUNK=chunk, BLOCK=block, VEC=vec, WIDE=_wide(x), RAGGED=steps % chunk != 0,
        ),
        num_warps=launch["NUM_WARPS"], device=x.device, interpreted=interpreted, outputs=outputs,
    )  # fmt: skip


def _forward_fake(x, v0, p0, p1, p2, *config_and_flags):
    config = _Config(*config_and_flags[: len(_Config._fields)])
    return_v_seq, save = config_and_flags[len(_Config._fields) :]
    state_dtype = _STATE_DTYPES[config.state]
    return (
        x.new_empty(x.shape),
        x.new_empty(x.shape[1:], dtype=state_dtype),
        x.new_empty(x.shape if return_v_seq else (0,), dtype=state_dtype),
        x.new_empty(_checkpoint_shape(x.shape, save), dtype=state_dtype),
    )


def _backward_impl(
    grad_spikes: Optional[Tensor], grad_v_final: Optional[Tensor], grad_v_seq: Optional[Tensor],
    x: Tensor, v0: Tensor, p0: Optional[Tensor], p1: Tensor, p2: Optional[Tensor], ckpt: Tensor,
    kind: int, reset: int, surrogate: int, sg_a: float, sg_b: float,
    decay_input: bool, detach_reset: bool, v_reset: float, lo: float, hi: float,
    state: int, spike_round: int, cuda_rule: bool, p0_scalar: bool, p2_scalar: bool,
    need_x: bool, need_v0: bool, need_p0: bool, need_p1: bool, need_p2: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:  # fmt: skip
    """Backward: grad_x, then per-neuron (time-summed, not batch-reduced) gradients of v0, p0, p1, p2 in fp32.

    Each output is empty when its ``need_*`` flag is off."""
    config = _Config(kind, reset, surrogate, sg_a, sg_b, decay_input, detach_reset, v_reset, lo, hi, state,
                     spike_round, cuda_rule, p0_scalar, p2_scalar)  # fmt: skip
    grads, needs = (grad_spikes, grad_v_final, grad_v_seq), (need_x, need_v0, need_p0, need_p1, need_p2)
    return _backward_plan(grads, x, v0, p0, p1, p2, ckpt, config, needs).launch()


def _backward_plan(
    grads: tuple, x: Tensor, v0: Tensor, p0: Optional[Tensor], p1: Tensor, p2: Optional[Tensor], ckpt: Tensor,
    config: _Config, needs: tuple,
) -> LaunchPlan:  # fmt: skip
    """The backward kernel's launch, its output buffers allocated (:func:`_backward_impl` launches it); ``grads``
    are the gradients of (spikes, v_final, v_seq), ``needs`` the flags of (x, v0, p0, p1, p2)."""
    need_x, need_v0, need_p0, need_p1, need_p2 = needs
    steps, state_shape = x.shape[0], x.shape[1:]
    grad_x = _empty(x.shape if need_x else (0,), x.dtype, x.device)
    per_neuron = [_empty(state_shape if need else (0,), torch.float32, x.device) for need in needs[1:]]
    outputs = (grad_x, *per_neuron)
    layout = _Layout.of(x)
    if layout.neurons == 0:
        return LaunchPlan.nothing(outputs)
    if steps > CHECKPOINT_EVERY and ckpt.numel() == 0:
        raise RuntimeError(
            f"the backward of {steps} steps needs the forward's state checkpoints, which it was asked not to "
            "save (save=False); run the forward with save=True when a gradient is wanted"
        )
    kernels = _kernels()
    x, v0, p1 = x.contiguous(), v0.contiguous(), p1.contiguous()
    p0 = p1 if p0 is None else p0.contiguous()
    p2 = p1 if p2 is None else p2.contiguous()
    grads = [g.contiguous() if g is not None else None for g in grads]
    interpreted = _interpreted(kernels)
    launch = _launch(x, interpreted)
    chunk = min(_next_power_of_2(steps), CHECKPOINT_EVERY)
    block = _interpreter_block(layout.neurons) if interpreted else launch["BACKWARD_BLOCK"]
    dummy = v0
    c = config
    return LaunchPlan(
        kernels.multistep_backward_kernel, (_cdiv(layout.neurons, block),),
        args=(
            x, v0, p0, p1, p2, ckpt if ckpt.numel() else dummy,
            *[g if g is not None else dummy for g in grads],
            grad_x if need_x else dummy, *[g if g.numel() else dummy for g in per_neuron],
            steps, layout.neurons, layout.sample, layout.inner, layout.channels,
            c.v_reset, c.lo, c.hi, c.sg_a, c.sg_b,
        ),
        constexprs=dict(
            KIND=c.kind, RESET=c.reset, DECAY_INPUT=c.decay_input, DETACH_RESET=c.detach_reset,
            SURROGATE=c.surrogate,
            V0_MODE=_mode(v0, x, allow_full=True), P0_MODE=_mode(p0, x), P1_MODE=_mode(p1, x),
            P2_MODE=_mode(p2, x),
            HAS_GS=grads[0] is not None, HAS_GV_FINAL=grads[1] is not None,
            HAS_GV_SEQ=grads[2] is not None and grads[2].numel() > 0,
            NEED_X=need_x, NEED_V0=need_v0, NEED_P0=need_p0, NEED_P1=need_p1, NEED_P2=need_p2,
            STATE=c.state, CUDA_RULE=c.cuda_rule, P0_SCALAR=c.p0_scalar, P2_SCALAR=c.p2_scalar,
            CHUNK=chunk, BLOCK=block, WIDE=_wide(x), RAGGED=steps % chunk != 0,
        ),
        num_warps=launch["NUM_WARPS"], device=x.device, interpreted=interpreted, outputs=outputs,
    )  # fmt: skip


def _backward_fake(grad_spikes, grad_v_final, grad_v_seq, x, v0, p0, p1, p2, ckpt, *config_and_needs):
    need_x, *needs = config_and_needs[len(_Config._fields) :]
    per_neuron = [x.new_empty(x.shape[1:] if need else (0,), dtype=torch.float32) for need in needs]
    return (x.new_empty(x.shape if need_x else (0,)), *per_neuron)


def _setup_context(ctx, inputs, output):
    x, v0, p0, p1, p2, *static = inputs  # static: the _Config fields, return_v_seq, save
    ctx.config = tuple(static[: len(_Config._fields)])
    ctx.static_inputs = len(static)
    ctx.save_for_backward(x, v0, p0, p1, p2, output[3])
    ctx.mark_non_differentiable(output[3])
    ctx.set_materialize_grads(False)


def _autograd_backward(ctx, grad_spikes, grad_v_final, grad_v_seq, _grad_ckpt):
    x, v0, p0, p1, p2, ckpt = ctx.saved_tensors
    need = [bool(n) for n in ctx.needs_input_grad[:5]]
    grad_x, *per_neuron = torch.ops.bsnn.triton_multistep_backward(
        grad_spikes, grad_v_final, grad_v_seq, x, v0, p0, p1, p2, ckpt, *ctx.config,
        *need,
    )  # fmt: skip
    reduced = []
    for value, grad, needed in zip((v0, p0, p1, p2), per_neuron, need[1:]):
        reduced.append(_sum_to_shape(grad.view(x.shape[1:]), value.shape).to(value.dtype) if needed else None)
    return (grad_x if need[0] else None, *reduced) + (None,) * ctx.static_inputs


def _define_ops() -> None:
    for impl in (_forward_impl, _backward_impl):  # the ops take _Config's fields, by name and in order
        names = tuple(inspect.signature(impl).parameters)
        start = names.index("kind")
        if names[start : start + len(_Config._fields)] != _Config._fields:
            raise AssertionError(f"{impl.__name__} must take {_Config._fields} in this order, got {names}")
    forward = torch.library.custom_op("bsnn::triton_multistep", _forward_impl, mutates_args=())
    forward.register_fake(_forward_fake)
    backward = torch.library.custom_op("bsnn::triton_multistep_backward", _backward_impl, mutates_args=())
    backward.register_fake(_backward_fake)
    forward.register_autograd(_autograd_backward, setup_context=_setup_context)


# --- launch helpers -----------------------------------------------------------------------------------


class _Layout(NamedTuple):
    """x[T, N, *S] seen as [T, M]: M neurons per step, and how a per-channel / per-neuron index is found."""

    neurons: int  # M = N * prod(S)
    sample: int  # prod(S)
    inner: int  # prod(S[1:])
    channels: int  # S[0]

    @classmethod
    def of(cls, x: Tensor) -> "_Layout":
        sample_shape = x.shape[2:]
        sample = math.prod(sample_shape)
        channels = sample_shape[0] if sample_shape else 1
        return cls(x[0].numel(), sample, math.prod(sample_shape[1:]), channels)


def _mode(value: Tensor, x: Tensor, allow_full: bool = False) -> int:
    """A value's layout code: per layer ([]), per channel ([C, 1, ...]), per neuron (one sample's shape) or
    the full state ([N, ...])."""
    if allow_full and value.dim() == x.dim() - 1:
        return codes.FULL_STATE
    if value.dim() == 0:
        return codes.PER_LAYER
    if value.shape == x.shape[2:]:
        return codes.PER_NEURON
    return codes.PER_CHANNEL


def _checkpoint_shape(x_shape, save: bool) -> tuple:
    count = (x_shape[0] + CHECKPOINT_EVERY - 1) // CHECKPOINT_EVERY - 1
    return (count, *x_shape[1:]) if save and count > 0 else (0,)


def _empty(shape, dtype: torch.dtype, device: torch.device) -> Tensor:
    """Every output buffer comes from here (the tests fill them with NaN to catch unwritten elements)."""
    return torch.empty(shape, dtype=dtype, device=device)


def _launch(x: Tensor, interpreted: bool) -> dict:
    """The launch constants for x's GPU architecture and dtype: the measured ones from :data:`TUNING_FILE`
    where ``bench/gpu_check.py`` wrote some, else the module's defaults."""
    defaults = {"FORWARD_CHUNK": FORWARD_CHUNK, "NUM_WARPS": NUM_WARPS, "BACKWARD_BLOCK": BACKWARD_BLOCK}
    chosen = _CHOSEN_LAUNCH.get()
    if chosen is not None:  # a sweep's candidate (launch_constants): neither the tuning file nor the defaults
        return {**defaults, **chosen}
    if interpreted or x.device.type != "cuda":
        return defaults
    arch = "sm_{}{}".format(*torch.cuda.get_device_capability(x.device))
    dtype = "fp32" if x.dtype == torch.float32 else "bf16"  # fp16 shares bf16's 2-byte traffic
    return {**defaults, **_tuning().get(arch, {}).get(dtype, {})}


@functools.lru_cache(maxsize=1)
def _tuning() -> dict:
    if not TUNING_FILE.exists():
        return {}
    return json.loads(TUNING_FILE.read_text())


#: the launch constants :func:`launch_constants` chose for the calls inside it (None: the tuned or default ones)
_CHOSEN_LAUNCH: contextvars.ContextVar[dict | None] = contextvars.ContextVar("launch_constants", default=None)


@contextlib.contextmanager
def launch_constants(**constants):
    """Run with these launch constants (``FORWARD_CHUNK``, ``NUM_WARPS``, ``BACKWARD_BLOCK``; the others the
    module's defaults) in place of the tuning file's, on any device: what the sweep in ``bench/gpu_check.py``
    times and what ``bench/kernels_static.py --launch`` compiles.

    >>> from bsnn_lightning.engine import SpikingJellyLIF
    >>> x, v0, params = torch.rand(5, 2, 8), torch.zeros(2, 8), {"tau": 2.0, "threshold": 1.0}
    >>> with launch_constants(NUM_WARPS=2):
    ...     print(launch_plan(x, v0, SpikingJellyLIF(), params).num_warps)
    2
    >>> with launch_constants(WARPS=2):
    ...     pass
    Traceback (most recent call last):
        ...
    ValueError: unknown launch constants ['WARPS']; expected FORWARD_CHUNK, NUM_WARPS, BACKWARD_BLOCK
    """
    unknown = sorted(set(constants) - {"FORWARD_CHUNK", "NUM_WARPS", "BACKWARD_BLOCK"})
    if unknown:
        raise ValueError(f"unknown launch constants {unknown}; expected FORWARD_CHUNK, NUM_WARPS, BACKWARD_BLOCK")
    token = _CHOSEN_LAUNCH.set({**(_CHOSEN_LAUNCH.get() or {}), **constants})
    try:
        yield
    finally:
        _CHOSEN_LAUNCH.reset(token)


def write_tuning(table: dict) -> None:
    """Merge ``{arch: {dtype: constants}}`` into :data:`TUNING_FILE` (atomically) and use it from now on.

    >>> import tempfile
    >>> from unittest import mock
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     file = Path(folder) / "tuning.json"
    ...     with mock.patch(f"{__name__}.TUNING_FILE", file):  # (the example leaves the package's file alone)
    ...         write_tuning({"sm_90": {"float16": {"FORWARD_CHUNK": 8}}})
    ...         write_tuning({"sm_90": {"bfloat16": {"FORWARD_CHUNK": 16}}})  # merged with the first
    ...     print(json.loads(file.read_text()))
    {'sm_90': {'bfloat16': {'FORWARD_CHUNK': 16}, 'float16': {'FORWARD_CHUNK': 8}}}
    """
    from ..atomic import write_atomically

    merged = _tuning() if TUNING_FILE.exists() else {}
    merged = {arch: dict(merged.get(arch, {})) for arch in merged}
    for arch, per_dtype in table.items():
        merged.setdefault(arch, {}).update(per_dtype)
    write_atomically(TUNING_FILE, (json.dumps(merged, indent=2, sort_keys=True) + "\n").encode())
    _tuning.cache_clear()


def _forward_vec(neurons: int) -> int:
    """Neurons per thread of the forward: 4 when the neuron count is a multiple of 16 (which Triton sees, so
    that every row of x, the spikes, v_seq and the checkpoints is known to be 16-byte aligned), else 1.

    4 fp32 are one 16-byte access, the widest store Triton emits per thread; with that many neurons of every
    tensor per thread, all accesses share one register layout. With 8 (16-byte bf16 accesses) the fp32 states
    would go through shared memory to a layout of 4; with an unaligned row, a vectorised state against
    scalar x and spikes would too."""
    return FORWARD_VEC if neurons % 16 == 0 else 1


#: element offsets into x ([T, M]) fit in 32 bits below this many elements (the last block reaches M + BLOCK)
WIDE_INDEX_AT = 2**31 - 2**16


def _wide(x: Tensor) -> bool:
    """Whether the kernels index with 64-bit offsets: x of 2**31 elements or more (32-bit are cheaper)."""
    return x.numel() >= WIDE_INDEX_AT


def _interpreter_block(neurons: int) -> int:
    return min(_next_power_of_2(neurons), INTERPRETER_BLOCK)


def _next_power_of_2(n: int) -> int:
    return 1 << max(int(n) - 1, 0).bit_length()


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _kernels():
    """The kernel module, imported (and so compiled or interpreted, per TRITON_INTERPRET) on first use."""
    from . import triton_kernels

    return triton_kernels


def _interpreted(kernels) -> bool:
    from triton.runtime.interpreter import InterpretedFunction

    return isinstance(kernels.multistep_forward_kernel, InterpretedFunction)


#: torch.library.custom_op arrived in torch 2.4
_HAS_CUSTOM_OPS = hasattr(torch.library, "custom_op")
if _HAS_CUSTOM_OPS:
    _define_ops()
register_backend("triton", run, supports, auto_devices=("cuda",), any_state_dtype=True)  # supports() judges it
