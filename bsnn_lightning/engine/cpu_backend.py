"""The ``cpu`` backend: a layer's whole time loop in one pass over memory per direction, on the CPU.

The reference loop (:mod:`bsnn_lightning.engine.reference`) is pointwise per neuron: step ``t`` of a neuron
reads only that neuron's ``x_t`` and state. So the loop over the ``T`` steps, unrolled, is one pointwise
graph, and ``torch.compile`` (inductor's C++ code generator) fuses it into one vectorised, OpenMP-parallel
loop over the neurons that keeps the state in a register across the steps. The forward reads ``x`` and
writes the spikes; the backward reads ``x`` again with the spikes' gradient, first runs the forward's steps
again in registers (each charged potential ``h`` and state the forward's to the bit: the same operations on
the same values), and writes ``x``'s gradient: 20 bytes per neuron-step in float32, against several
whole-tensor passes per step for an eager loop, and nothing kept for the backward but ``x`` itself. The
exception is a dynamics whose charge divides at every step (SpikingJelly's LIF, ``/ tau``): a vector
division per step costs more than reading 4 bytes, so its forward also writes ``h`` (and the states, where
they do not follow from ``h``), as the reference saves, and its backward reads them: 24 bytes. (Measured, same
process, [8, 128, 1024] forward+backward after a 256 MiB copy, saving against charging again: snnTorch's Leaky
1.64 against 1.45 ms, SpikingJelly's LIF 1.92 against 2.10 ms; docs/kernels.md.) Since that backward reads ``x``, a change
to ``x`` in place between the forward and the backward is refused by autograd ("modified by an inplace
operation"), where a backward from saved potentials would not need ``x``. Those output tensors
are fresh at every call, so on its first call the backend keeps freed host memory for reuse
(:mod:`.host_memory`: glibc's mmap and trim thresholds, unless ``BSNN_CPU_MALLOC=system``); otherwise each
call's outputs are new mappings whose pages the kernel faults in and zeroes, which cost more than the loop.

What it computes is the reference's own step functions (``Dynamics.charge``, ``fire``, ``reset`` and
``backward_step``), traced, so the arithmetic is the same operations in the same order. Inductor is
told to keep it exact: no floating-point contraction (its default, ``-ffp-contract=off``). The tests compare
spikes and states bit for bit with the reference, gradients to rounding, in float32 and float64.

Compiled variants are cached per shape class: the dynamics, the number of steps, the dtypes and ranks,
which parameters are tensors, and which gradients the backward computes. Sizes are dynamic, so a new batch
size or layer width reuses the variant; Python-float parameters (``tau``, ``threshold``) are inputs too.
Nothing compiles at import: a variant compiles on its first call (seconds, once per shape class and
process; inductor's on-disk cache makes later processes faster). Each variant gets its own code object,
because dynamo keeps its compiled graphs, and its limit of 8 recompilations, per code object.

What it does not run (``supports`` says why, and ``"auto"`` leaves the call to the reference): the coupled
bifurcation (its channels mix at every step), a 16-bit state (compiled, its steps did not round as eager
PyTorch's: see ``supports``), relaxed dynamics (gradcheck's smooth spikes), a library's own surrogate
function, tensors not on the CPU, and any call when no C++ compiler is found (one warning).
"""

from __future__ import annotations

import contextlib
import functools
import sys
import threading
import types
from dataclasses import replace
from typing import Callable

import torch

from ..user_warnings import warn_user
from . import cpu_kernel_rewrite, host_memory
from .direct_call import CompiledLoop
from .switches import switched_on
from .backends import register_backend
from .torch_modes import EXACT_INDUCTOR_OPTIONS, cpp_compiler_problem, dispatch_observed, distinct_sizes
from .dynamics import Dynamics
from .reference import _as_compute, _previous_state, _run_autograd, _step, _sum_to_shape, run_reference
from .surrogates import FUNCTION_PREFIX

#: "auto" leaves smaller calls (elements of x) to the reference: below this, the compiled loop's fixed cost
#: per call (its guards, the launch of the parallel region) outweighs what fusing saves
AUTO_MIN_ELEMENTS = 1 << 16
#: vectors of neurons per iteration of the rewritten loops (:mod:`.cpu_kernel_rewrite`): two side by side in the
#: forward, whose chain of steps is short and waits on each step's latency; one in the backward, whose longer
#: steps (a surrogate's exp and division) already fill the core, and whose registers two would overflow
INTERLEAVE = {"forward": 2, "backward": 1}
#: inductor's options for these loops: exact (every 16-bit operation rounded as eager PyTorch rounds it, no fused
#: multiply-add: inductor's default, restated so that a changed default cannot make the loop inexact silently),
#: and the threads decided when the loop runs: a variant serves every size of its shape class, and inductor
#: otherwise decides from the first call's sizes, whose loop, if small, then ran on one thread at every size
LOOP_OPTIONS = {**EXACT_INDUCTOR_OPTIONS, "cpp.dynamic_threads": True}
#: the environment variable that keeps "auto" off this backend ("off"; by name it still runs): for short runs,
#: where compiling costs more than the fused loop saves, and for test suites
AUTO_SWITCH = "BSNN_CPU_AUTO"


def supports(x: torch.Tensor, dynamics: Dynamics) -> str | None:
    """None if this backend can run the call, else the reason it cannot.

    >>> from bsnn_lightning.engine import SpikingJellyLIF
    >>> supports(torch.zeros(2, 1, 3), SpikingJellyLIF()) is None  # asking compiles nothing
    True
    >>> supports(torch.zeros(2, 1, 3, device="meta"), SpikingJellyLIF())
    "it runs CPU tensors (inductor's C++ loops), got x on meta"
    """
    if x.device.type != "cpu":
        return f"it runs CPU tensors (inductor's C++ loops), got x on {x.device}"
    if dynamics.matrix_params:
        return (
            f"{type(dynamics).__name__} mixes channels at every step ({', '.join(dynamics.matrix_params)}), "
            "so its time loop is not pointwise per neuron and cannot be one loop over the neurons"
        )
    if dynamics.relaxed:
        return "relaxed dynamics (smooth spikes for gradcheck) run on the reference"
    if dynamics.compute_dtype(x.dtype) in (torch.float16, torch.bfloat16):
        return (
            f"a {dynamics.compute_dtype(x.dtype)} state does not round compiled as eager PyTorch rounds it on the "
            "CPU: inductor rounds a float32 0-d parameter (PLIF's sigmoid(w), 0.0.0.0.14's tau) to 16 bits before "
            "each product, and with Python-float parameters too states differed in the last bit "
            "(tests/test_cpu_backend.py); the reference runs it"
        )
    if dynamics.surrogate.name.startswith(FUNCTION_PREFIX):
        return "a library's own surrogate function is taken by autograd at every step, which only the reference does"
    return _compiler_missing()


def run(
    x: torch.Tensor,
    v0: torch.Tensor,
    dynamics: Dynamics,
    params: dict[str, "float | torch.Tensor"],
    return_v_seq: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Backend entry point; arguments already validated and broadcast by :func:`engine.multistep`. Returns the
    spikes, the final state, the states when asked for, and the final state's float32 sum (None where the
    reference ran the call)."""
    if torch.compiler.is_compiling():  # inside a user's compiled model: its compiler fuses the plain loop
        return *_run_autograd(x, v0, dynamics, params, return_v_seq), None
    if dispatch_observed():
        # a dispatch mode that sees every operation (a FLOP counter, as Lightning's model summary runs; a
        # debugging mode) cannot be compiled through: the reference runs the call, with the same results
        return *run_reference(x, v0, dynamics, params, return_v_seq), None
    if dynamics.autograd:  # the same values; the hand-written backward replaces autograd's
        dynamics = replace(dynamics, autograd=False)
    names = tuple(params)
    values = [params[n] for n in names]
    keep = torch.is_grad_enabled() and any(isinstance(t, torch.Tensor) and t.requires_grad for t in (x, v0, *values))
    if not keep:  # nothing to differentiate: the forward loop alone, without an autograd Function's apply
        # (under no_grad, as a Function's forward runs: the same compiled variant either way)
        with torch.no_grad() if torch.is_grad_enabled() else contextlib.nullcontext():
            spikes, v_final, _, v_seq, v_sum = _forward(dynamics, names, return_v_seq, False, x.contiguous(), v0, values)
    else:
        spikes, v_final, v_seq, v_sum = _FusedMultistep.apply(dynamics, names, return_v_seq, x, v0, *values)
    return spikes, v_final, (v_seq if return_v_seq else None), v_sum


def _forward(dynamics, names, return_v_seq, keep, x, v0, values) -> tuple:
    """The compiled forward loop's outputs for a contiguous ``x`` (one layout per variant: a strided x would
    otherwise compile a variant of its own): spikes, final state, the charged potentials (when ``keep``), the
    states (when asked for, or kept for the backward), the final state's float32 sum."""
    keep_states = return_v_seq or (keep and not dynamics.state_from_charge)
    spec = ("forward", dynamics, names, x.shape[0], x.dim(), x.dtype, _kinds(v0, values), keep, keep_states)
    compute = dynamics.compute_dtype(x.dtype)
    build = lambda: _forward_loop(dynamics, names, x.shape[0], compute, keep, keep_states)  # noqa: E731
    return _compiled(spec, build)(x, v0, *values)


def _recharges(dynamics: Dynamics) -> bool:
    """Whether the backward charges again from ``x`` (the forward then writes neither the charged potentials
    nor the states, and saves nothing new) rather than reading back what the forward saved: a few operations
    per step against 4 bytes per neuron-step written and read, except where the charge divides at every step."""
    return not dynamics.charge_divides


class _FusedMultistep(torch.autograd.Function):
    """The forward loop and its backward (only a call with something to differentiate comes here). What the
    backward reads: ``x``, from which it charges again (:func:`_recharges`), or else the charged potentials
    (and the states, unless they follow from those) that the forward saved."""

    @staticmethod
    def forward(ctx, dynamics, names, return_v_seq, x, v0, *values):
        x = x.contiguous()
        recharge = _recharges(dynamics)
        spikes, v, charged, history, v_sum = _forward(dynamics, names, return_v_seq, not recharge, x, v0, values)
        ctx.spec = (dynamics, names, return_v_seq, x.dtype, dynamics.compute_dtype(x.dtype), recharge)
        ctx.constants = {n: val for n, val in zip(names, values) if not isinstance(val, torch.Tensor)}
        # an output the loss does not use gets no gradient tensor: the final state's is a broadcast zero below,
        # not a tensor of zeros written and read at every step
        ctx.set_materialize_grads(False)
        ctx.mark_non_differentiable(v_sum)
        tensors = [val for val in values if isinstance(val, torch.Tensor)]
        if recharge:
            saved = (x, None)
        else:
            saved = (charged, None if dynamics.state_from_charge else history)
        ctx.save_for_backward(*saved, v0, *tensors)
        # None: no tensor made for an output not asked for; v_sum: the finite check's (the backend's contract)
        return spikes, v, (history if return_v_seq else None), v_sum

    @staticmethod
    def backward(ctx, grad_spikes, grad_v_final, grad_v_seq, _grad_v_sum):
        dynamics, names, return_v_seq, x_dtype, compute, recharge = ctx.spec
        first, history, v0, *tensors = ctx.saved_tensors  # first: x, or the charged potentials
        values, it = [], iter(tensors)
        for n in names:
            values.append(ctx.constants[n] if n in ctx.constants else next(it))
        needs = tuple(n for i, n in enumerate(names) if ctx.needs_input_grad[5 + i])
        need_x, need_v0 = ctx.needs_input_grad[3], ctx.needs_input_grad[4]
        if grad_spikes is None:  # the loss used the states only
            grad_spikes = torch.zeros(first.shape, dtype=x_dtype)
        # the same zeros autograd would have written, as one value broadcast over the neurons (stride 0)
        no_final = grad_v_final is None
        grad_v_final = _zeros(compute, first.shape[1:]) if no_final else grad_v_final.contiguous()
        if return_v_seq and grad_v_seq is None:
            grad_v_seq = torch.zeros(first.shape, dtype=compute)  # the states: x's shape, the state's dtype
        spec = (
            "backward", dynamics, names, first.shape[0], first.dim(), x_dtype, _kinds(v0, values), recharge,
            history is not None, return_v_seq, needs, need_x, need_v0, grad_spikes.dtype, no_final,
        )
        build = lambda: _backward_loop(  # noqa: E731
            dynamics, names, first.shape[0], compute, x_dtype, return_v_seq, needs, need_x, need_v0, recharge
        )
        grad_x, grad_v0, *grad_params = _compiled(spec, build)(
            grad_spikes.contiguous(),
            grad_v_final,
            grad_v_seq.contiguous() if return_v_seq else None,
            first,
            history,
            v0,
            *values,
        )
        grads = iter(grad_params)
        grad_params = [next(grads) if n in needs else None for n in names]
        return (None, None, None, grad_x, grad_v0, *grad_params)


# --- the loops that inductor compiles ---------------------------------------------------------------------


def _forward_loop(dynamics: Dynamics, names, steps: int, compute: torch.dtype, keep: bool, keep_states: bool):
    """``(x, v0, *values) -> (spikes, v_T, h or None, states or None, v_T's float32 sum)``: the reference's
    forward, unrolled; the sum (for :func:`~bsnn_lightning.engine.multistep`'s finite check) is taken in the same
    loop over the neurons, from the state still in a register (the rewrite keeps it there: a sum's step is one
    statement :mod:`.cpu_kernel_rewrite` moves)."""

    def forward(x, v0, *values):
        p = _as_compute(dict(zip(names, values)), compute)
        v = v0.to(compute).expand(x.shape[1:])
        spikes, charged, states = [], [], []
        for t in range(steps):
            h, s, v = _step(dynamics, x[t], v, p, compute)
            spikes.append(s.to(x.dtype))
            charged.append(h)
            states.append(v)
        return (
            torch.stack(spikes),
            v,
            torch.stack(charged) if keep else None,
            torch.stack(states) if keep_states else None,
            v.sum(dtype=torch.float32),
        )

    return forward


def _backward_loop(dynamics, names, steps, compute, x_dtype, return_v_seq, needs, need_x, need_v0, recharge):
    """``(grad_spikes, grad_v_T, grad_v_seq, x or h, states, v0, *values) -> (grad_x, grad_v0, *grad_params)``:
    the reference's backward, unrolled (each parameter's gradient summed over the steps, then over the batch).
    With ``recharge`` it reads ``x`` and first runs the forward's steps again, the same operations on the same
    values, so each ``h`` and state is the forward's to the bit, in registers rather than read from memory."""
    needs_set = frozenset(needs)

    def backward(grad_spikes, grad_v_final, grad_v_seq, first, history, v0, *values):
        by_name = dict(zip(names, values))
        p = _as_compute(by_name, compute)
        v0_full = v0.to(compute).expand(first.shape[1:])
        charged = first  # x when charging again, else the saved charged potentials
        if recharge:
            charged, history, v = [], [], v0_full
            for t in range(steps):
                h, _, v = _step(dynamics, first[t], v, p, compute)
                charged.append(h)
                history.append(v)
        carry = grad_v_final.to(compute)
        grad_x = [None] * steps
        sums: dict[str, torch.Tensor] = {}
        for t in range(steps - 1, -1, -1):
            gv = carry + grad_v_seq[t].to(compute) if return_v_seq else carry
            v_prev = _previous_state(dynamics, charged, history, v0_full, t, p)
            gx, carry, grads = dynamics.backward_step(grad_spikes[t].to(compute), gv, charged[t], v_prev, p, needs_set)
            grad_x[t] = gx.to(x_dtype)
            for n, g in grads.items():
                sums[n] = g if n not in sums else sums[n] + g
        out = [torch.stack(grad_x) if need_x else None]
        out.append(_sum_to_shape(carry, v0.shape).to(v0.dtype) if need_v0 else None)
        for n in needs:
            out.append(_sum_to_shape(sums[n], by_name[n].shape).to(by_name[n].dtype))
        return tuple(out)

    return backward


# --- the cache of compiled variants -----------------------------------------------------------------------

_COMPILED: dict[tuple, CompiledLoop] = {}
_LOCK = threading.Lock()


def _compiled(spec: tuple, build: Callable[[], Callable]) -> CompiledLoop:
    """The compiled variant for this shape class, built and wrapped on first use (it compiles on its first call)."""
    fn = _COMPILED.get(spec)
    if fn is None:
        with _LOCK:
            fn = _COMPILED.get(spec)
            if fn is None:
                # once, with the first variant: fresh output tensors reuse freed memory, not new pages
                host_memory.apply_default()
                # and inductor's C++ for these loops reordered, with streaming stores (cpu_kernel_rewrite)
                cpu_kernel_rewrite.install()
                loop = _own_code(build(), f"bsnn_cpu_{spec[0]}_{len(_COMPILED)}")
                # (called without dynamo's frame once compiled: direct_call)
                fn = CompiledLoop(loop, LOOP_OPTIONS, functools.partial(_compiling, INTERLEAVE[spec[0]]))
                _COMPILED[spec] = fn
    return fn


@contextlib.contextmanager
def _compiling(interleave: int):
    """Around a call that may compile: a symbol of its own for every size (by default dynamo gives equal sizes
    one symbol, a batch of 8 on an 8 x 8 map, and a later call whose sizes differ then compiles the variant
    again), and the kernels compiled in it rewritten (:mod:`.cpu_kernel_rewrite`)."""
    with distinct_sizes(), cpu_kernel_rewrite.ours(interleave):
        yield


def _own_code(fn: types.FunctionType, name: str) -> types.FunctionType:
    """``fn`` with a code object of its own: dynamo caches compiled graphs (and counts recompilations against
    its limit) per code object, and every variant's loop is the same nested function's code."""
    code = fn.__code__.replace(co_name=name)
    return types.FunctionType(code, fn.__globals__, name, fn.__defaults__, fn.__closure__)


#: read-only zeros, each a 0-d zero broadcast to a shape (stride 0), by dtype and shape: the final state's
#: gradient where the loss leaves it unused (a layer's backward asks for the same one at every step)
_ZEROS: dict[tuple, torch.Tensor] = {}
#: the most kept (a few per layer shape and dtype; a sweep over shapes starts afresh)
MAX_ZEROS = 256


def _zeros(dtype: torch.dtype, shape: torch.Size) -> torch.Tensor:
    """Zeros of ``dtype`` and ``shape``, one 0-d zero expanded (the backward loop only reads them), made once.

    >>> z = _zeros(torch.float32, torch.Size([2, 3]))
    >>> z is _zeros(torch.float32, torch.Size([2, 3])), z.stride(), z.sum().item()
    (True, (0, 0), 0.0)
    """
    key = (dtype, shape)
    zeros = _ZEROS.get(key)
    if zeros is None:
        if len(_ZEROS) >= MAX_ZEROS:
            _ZEROS.clear()
        zeros = _ZEROS.setdefault(key, torch.zeros((), dtype=dtype).expand(shape))
    return zeros


def _kinds(v0: torch.Tensor, values) -> tuple:
    """The parts of the initial state and parameters that change the compiled graph: float or tensor, dtype,
    rank (sizes are dynamic)."""
    return tuple(
        ("float",) if not isinstance(v, torch.Tensor) else (v.dtype, v.dim()) for v in (v0, *values)
    )


# --- the C++ compiler -------------------------------------------------------------------------------------

_COMPILER: list["str | None"] = []  #: [] until checked, then [None] (found) or [the reason it is missing]


def _compiler_missing() -> str | None:
    """None if inductor finds a C++ compiler, else why the backend cannot run (said once, as a warning)."""
    if not _COMPILER:
        with _LOCK:
            if not _COMPILER:
                _COMPILER.append(cpp_compiler_problem())
                if _COMPILER[0] is not None:
                    warn_user(f"the fused CPU backend 'cpu' is off: {_COMPILER[0]}; 'auto' runs the reference loop")
    return _COMPILER[0]


def auto_min_elements() -> int:
    """The smallest x "auto" gives this backend: :data:`AUTO_MIN_ELEMENTS`, or never with ``BSNN_CPU_AUTO=off``.

    >>> import os
    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, {"BSNN_CPU_AUTO": "on"}):
    ...     print(auto_min_elements())
    65536
    >>> with mock.patch.dict(os.environ, {"BSNN_CPU_AUTO": "off"}):
    ...     print(auto_min_elements() == sys.maxsize)
    True
    """
    return AUTO_MIN_ELEMENTS if switched_on(AUTO_SWITCH) else sys.maxsize


register_backend("cpu", run, supports, any_state_dtype=True, auto_min_elements=auto_min_elements(), state_sum=True)
