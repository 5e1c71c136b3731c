"""The ``triton`` backend: the multistep engine's loop fused into one Triton kernel forward, one backward.

``supports`` says whether a call can run here (and why not, so that ``"auto"`` falls back to ``"torch"``);
``run`` is the backend entry point. Both kernels (:mod:`.triton_kernels`) are behind two
``torch.library`` custom ops, ``bsnn::triton_multistep`` and ``bsnn::triton_multistep_backward``, with
their autograd and fake (meta) implementations registered, so ``torch.compile`` sees the neuron as one
opaque node and needs no graph break inside it.

What runs here: :class:`SpikingJellyLIF`, :class:`SpikingJellyIF`, :class:`SpikingJellyPLIF`,
:class:`SnnTorchLeaky` (delayed reset, snnTorch's default) and diagonal :class:`Bifurcation`, with the
built-in surrogates, fp32 / bf16 / fp16 inputs (state math in fp32), every accepted shape of ``v0`` and of
the parameters. What does not, with the reason ``supports`` gives: coupled bifurcation (a matrix product
across channels every step), ``SnnTorchLeaky(reset_delay=False)``, user-registered surrogates, ``relaxed``
dynamics (the reference backend's gradcheck device) and float64 (its gradcheck dtype). An explicit
``backend="triton"`` for such a call raises that reason; ``"auto"`` runs it on ``"torch"``.

Triton is optional and imported on the first call that needs it. On CPU tensors the kernels run only
through Triton's interpreter (``TRITON_INTERPRET=1`` set before this package's kernels are first used),
which is how the test suite checks them without a GPU; ``"auto"`` never picks this backend off CUDA.
The backward saves nothing but x and, for T > 16, a checkpoint of the state every 16 steps: it recomputes
the membrane from x (see ``docs/kernels.md`` for the memory traffic this buys).
"""

from __future__ import annotations

import contextlib
import math
from typing import NamedTuple, Optional

import torch
from torch import Tensor

from . import surrogates
from .backends import register_backend
from .dynamics import Bifurcation, Dynamics, SnnTorchLeaky, SpikingJellyIF, SpikingJellyLIF, SpikingJellyPLIF
from .reference import _sum_to_shape

#: the backward recomputes the membrane from a state checkpoint every this many steps, keeping that many
#: charged potentials per neuron in registers (the forward writes the checkpoints when T is longer)
CHECKPOINT_EVERY = 16
#: GPU launch shapes. Forward: 8 neurons per thread (16-byte bf16 accesses), CHUNK steps unrolled. Backward:
#: one neuron per thread, so that the [CHUNK, BLOCK] register tile needs no data exchange between threads
#: (checked on the compiled sm_90 code: no shared memory, no shuffles, no spills, about 140 registers).
FORWARD_BLOCK, FORWARD_CHUNK, BACKWARD_BLOCK, NUM_WARPS = 1024, 8, 128, 4
#: neurons per program under Triton's interpreter (large: each program is a Python loop of numpy calls)
INTERPRETER_BLOCK = 4096

#: the kernels' KIND for each dynamics, and the name of its first parameter (p0; None: it has none)
_KINDS = {SpikingJellyLIF: 0, SnnTorchLeaky: 1, Bifurcation: 2, SpikingJellyIF: 3, SpikingJellyPLIF: 4}
_P0 = {0: "tau", 1: "beta", 2: "eigenvalues", 3: None, 4: "q"}
_SNNTORCH_RESETS = {"subtract": 0, "zero": 1, "none": 2}
_SURROGATES = {  # name -> (kernel id, the built-in function the kernel reproduces)
    "atan": (0, surrogates._atan),
    "sigmoid": (1, surrogates._sigmoid),
    "fast_sigmoid": (2, surrogates._fast_sigmoid),
    "triangle": (3, surrogates._triangle),
}
_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def supports(x: Tensor, dynamics: Dynamics) -> str | None:
    """None if this backend can run the call, else the reason it cannot."""
    if not _HAS_CUSTOM_OPS:
        return f"the triton backend needs torch >= 2.4 (torch.library.custom_op), got torch {torch.__version__}"
    reason = _dynamics_reason(dynamics)
    if reason is not None:
        return reason
    if x.dtype not in _DTYPES:
        return f"expected x of dtype float32, bfloat16 or float16, got {x.dtype} (the torch backend runs it)"
    if x.device.type not in ("cuda", "cpu"):
        return f"expected x on a CUDA device (or the CPU under Triton's interpreter), got {x.device}"
    try:
        kernels = _kernels()
    except ImportError as error:
        return f"triton is not installed ({error}); install the extra: pip install 'bsnn-lightning[triton]'"
    if x.device.type == "cpu" and not _interpreted(kernels):
        return (
            "x is on the CPU; Triton kernels run on CUDA GPUs, or on the CPU through Triton's interpreter "
            "(set TRITON_INTERPRET=1 before bsnn_lightning's Triton kernels are first used)"
        )
    return None


def run(
    x: Tensor, v0: Tensor, dynamics: Dynamics, params: dict[str, "float | Tensor"], return_v_seq: bool
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Backend entry point; arguments already validated and broadcast by :func:`engine.multistep`."""
    config = _Config.of(dynamics)
    p0_name = _P0[config.kind]
    p0 = _as_tensor(params[p0_name], x) if p0_name is not None else None
    p1 = _as_tensor(params["threshold"], x)
    p2 = _as_tensor(params["graded"], x) if "graded" in params else None
    save = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (x, v0, p0, p1, p2)
    )
    spikes, v_final, v_seq, _ = torch.ops.bsnn.triton_multistep(
        x, v0, p0, p1, p2, *config, return_v_seq, save
    )
    return spikes, v_final, (v_seq if return_v_seq else None)


class _Config(NamedTuple):
    """The static choices of a dynamics, as the custom ops take them (plain ints, bools and floats)."""

    kind: int
    reset: int
    decay_input: bool
    detach_reset: bool
    surrogate: int
    v_reset: float
    lo: float
    hi: float
    sg_a: float
    sg_b: float

    @classmethod
    def of(cls, dynamics: Dynamics) -> "_Config":
        kind = _KINDS[type(dynamics)]
        if kind == 1:
            reset, v_reset, detach = _SNNTORCH_RESETS[dynamics.reset_mechanism], 0.0, False
        else:
            hard = dynamics.v_reset is not None
            reset, v_reset, detach = int(hard), (float(dynamics.v_reset) if hard else 0.0), dynamics.detach_reset
        lo, hi = dynamics.bounds if kind == 2 else (0.0, 0.0)
        surrogate = dynamics.surrogate
        sg_a, sg_b = _surrogate_constants(surrogate.name, surrogate.alpha)
        decay_input = bool(getattr(dynamics, "decay_input", False))
        return cls(kind, reset, decay_input, detach, _SURROGATES[surrogate.name][0], v_reset, lo, hi, sg_a, sg_b)


def _surrogate_constants(name: str, alpha: float) -> tuple[float, float]:
    """The two numbers each surrogate's kernel formula takes, computed in double as surrogates.py does."""
    if name == "atan":
        return math.pi / 2 * alpha, alpha / 2
    if name == "sigmoid":
        return alpha, alpha
    if name == "fast_sigmoid":
        return alpha, 0.0
    return alpha * alpha, alpha  # triangle


def _dynamics_reason(dynamics: Dynamics) -> str | None:
    if type(dynamics) not in _KINDS:
        return (
            f"the triton backend fuses {sorted(t.__name__ for t in _KINDS)} (diagonal Bifurcation only), "
            f"got {type(dynamics).__name__}"
        )
    if isinstance(dynamics, SnnTorchLeaky) and not dynamics.reset_delay and dynamics.reset_mechanism != "none":
        return (
            "SnnTorchLeaky with reset_delay=False resets at once from the spike; the kernels implement "
            "snnTorch's default delayed reset only (the torch backend runs both)"
        )
    if isinstance(dynamics, Bifurcation) and dynamics.structure != "diagonal":
        return (
            "coupled bifurcation mixes channels with a matrix product every step, which the elementwise "
            "kernel does not fuse; run it with backend='torch' (or 'auto', which picks it)"
        )
    if dynamics.relaxed:
        return "relaxed dynamics (the smooth forward used for gradcheck) run on the torch backend only"
    name = dynamics.surrogate.name
    builtin = _SURROGATES.get(name)
    if builtin is None or surrogates._REGISTRY[name][0] is not builtin[1]:
        return (
            f"surrogate {name!r} is user-registered; the kernels compute the built-in "
            f"{sorted(_SURROGATES)} (the torch backend runs any registered surrogate)"
        )
    return None


def _as_tensor(value: "float | Tensor", x: Tensor) -> Tensor:
    if isinstance(value, Tensor):
        return value
    return torch.full((), value, dtype=torch.float32, device=x.device)


# --- the custom ops -----------------------------------------------------------------------------------


def _forward_impl(
    x: Tensor, v0: Tensor, p0: Optional[Tensor], p1: Tensor, p2: Optional[Tensor],
    kind: int, reset: int, decay_input: bool, detach_reset: bool, surrogate: int,
    v_reset: float, lo: float, hi: float, sg_a: float, sg_b: float,
    return_v_seq: bool, save: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:  # fmt: skip
    """Forward: (spikes [T, N, ...] in x's dtype, v_final [N, ...] fp32, v_seq fp32 or empty, checkpoints).

    p0 is tau, beta, the eigenvalues or q (None for IF), p1 the threshold, p2 the graded factor (snnTorch)."""
    steps, state_shape = x.shape[0], x.shape[1:]
    spikes = _empty(x.shape, x.dtype, x.device)
    v_final = _empty(state_shape, torch.float32, x.device)
    v_seq = _empty(x.shape if return_v_seq else (0,), torch.float32, x.device)
    ckpt = _empty(_checkpoint_shape(x.shape, save), torch.float32, x.device)
    layout = _Layout.of(x)
    if layout.neurons == 0:
        return spikes, v_final, v_seq, ckpt
    kernels = _kernels()
    x, v0, p1 = x.contiguous(), v0.contiguous(), p1.contiguous()
    p0 = p1 if p0 is None else p0.contiguous()  # unused by IF: any pointer will do
    p2 = p1 if p2 is None else p2.contiguous()
    interpreted = _interpreted(kernels)
    block = _interpreter_block(layout.neurons) if interpreted else FORWARD_BLOCK
    chunk = min(_next_power_of_2(steps), FORWARD_CHUNK)
    with _on_device(x, interpreted):
        kernels.multistep_forward_kernel[(_cdiv(layout.neurons, block),)](
            x, v0, p0, p1, p2,
            spikes, v_final, v_seq if return_v_seq else v_final, ckpt if ckpt.numel() else v_final,
            steps, layout.neurons, layout.sample, layout.inner, layout.channels,
            v_reset, lo, hi,
            KIND=kind, RESET=reset, DECAY_INPUT=decay_input,
            V0_MODE=_mode(v0, x, allow_full=True), P0_MODE=_mode(p0, x), P1_MODE=_mode(p1, x),
            P2_MODE=_mode(p2, x),
            STORE_V_SEQ=return_v_seq, SAVE_CKPT=ckpt.numel() > 0, CKPT_EVERY=CHECKPOINT_EVERY,
            CHUNK=chunk, BLOCK=block, num_warps=NUM_WARPS, enable_fp_fusion=False,
        )  # fmt: skip
    return spikes, v_final, v_seq, ckpt


def _forward_fake(x, v0, p0, p1, p2, *config_and_flags):
    return_v_seq, save = config_and_flags[-2:]
    return (
        x.new_empty(x.shape),
        x.new_empty(x.shape[1:], dtype=torch.float32),
        x.new_empty(x.shape if return_v_seq else (0,), dtype=torch.float32),
        x.new_empty(_checkpoint_shape(x.shape, save), dtype=torch.float32),
    )


def _backward_impl(
    grad_spikes: Optional[Tensor], grad_v_final: Optional[Tensor], grad_v_seq: Optional[Tensor],
    x: Tensor, v0: Tensor, p0: Optional[Tensor], p1: Tensor, p2: Optional[Tensor], ckpt: Tensor,
    kind: int, reset: int, decay_input: bool, detach_reset: bool, surrogate: int,
    v_reset: float, lo: float, hi: float, sg_a: float, sg_b: float,
    need_x: bool, need_v0: bool, need_p0: bool, need_p1: bool, need_p2: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:  # fmt: skip
    """Backward: grad_x, then per-neuron (time-summed, not batch-reduced) gradients of v0, p0, p1, p2 in fp32.

    Each output is empty when its ``need_*`` flag is off."""
    steps, state_shape = x.shape[0], x.shape[1:]
    grad_x = _empty(x.shape if need_x else (0,), x.dtype, x.device)
    needs = (need_v0, need_p0, need_p1, need_p2)
    per_neuron = [_empty(state_shape if need else (0,), torch.float32, x.device) for need in needs]
    layout = _Layout.of(x)
    if layout.neurons == 0:
        return (grad_x, *per_neuron)
    if steps > CHECKPOINT_EVERY and ckpt.numel() == 0:
        raise RuntimeError(
            f"the backward of {steps} steps needs the forward's state checkpoints, which it was asked not to "
            "save (save=False); run the forward with save=True when a gradient is wanted"
        )
    kernels = _kernels()
    x, v0, p1 = x.contiguous(), v0.contiguous(), p1.contiguous()
    p0 = p1 if p0 is None else p0.contiguous()
    p2 = p1 if p2 is None else p2.contiguous()
    grads = [g.contiguous() if g is not None else None for g in (grad_spikes, grad_v_final, grad_v_seq)]
    interpreted = _interpreted(kernels)
    chunk = min(_next_power_of_2(steps), CHECKPOINT_EVERY)
    block = _interpreter_block(layout.neurons) if interpreted else BACKWARD_BLOCK
    dummy = v0
    with _on_device(x, interpreted):
        kernels.multistep_backward_kernel[(_cdiv(layout.neurons, block),)](
            x, v0, p0, p1, p2, ckpt if ckpt.numel() else dummy,
            *[g if g is not None else dummy for g in grads],
            grad_x if need_x else dummy, *[g if g.numel() else dummy for g in per_neuron],
            steps, layout.neurons, layout.sample, layout.inner, layout.channels,
            v_reset, lo, hi, sg_a, sg_b,
            KIND=kind, RESET=reset, DECAY_INPUT=decay_input, DETACH_RESET=detach_reset, SURROGATE=surrogate,
            V0_MODE=_mode(v0, x, allow_full=True), P0_MODE=_mode(p0, x), P1_MODE=_mode(p1, x),
            P2_MODE=_mode(p2, x),
            HAS_GS=grads[0] is not None, HAS_GV_FINAL=grads[1] is not None,
            HAS_GV_SEQ=grads[2] is not None and grads[2].numel() > 0,
            NEED_X=need_x, NEED_V0=need_v0, NEED_P0=need_p0, NEED_P1=need_p1, NEED_P2=need_p2,
            CHUNK=chunk, BLOCK=block, num_warps=NUM_WARPS, enable_fp_fusion=False,
        )  # fmt: skip
    return (grad_x, *per_neuron)


def _backward_fake(grad_spikes, grad_v_final, grad_v_seq, x, v0, p0, p1, p2, ckpt, *config_and_needs):
    need_x, *needs = config_and_needs[-5:]
    per_neuron = [x.new_empty(x.shape[1:] if need else (0,), dtype=torch.float32) for need in needs]
    return (x.new_empty(x.shape if need_x else (0,)), *per_neuron)


def _setup_context(ctx, inputs, output):
    x, v0, p0, p1, p2, *config, _return_v_seq, _save = inputs
    ctx.config = tuple(config)
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
    return (grad_x if need[0] else None, *reduced) + (None,) * 12


def _define_ops() -> None:
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
    """0 per layer, 1 per channel ([C, 1, ...]), 2 per neuron (one sample's shape), 3 full state."""
    if allow_full and value.dim() == x.dim() - 1:
        return 3
    if value.dim() == 0:
        return 0
    if value.shape == x.shape[2:]:
        return 2
    return 1


def _checkpoint_shape(x_shape, save: bool) -> tuple:
    count = (x_shape[0] + CHECKPOINT_EVERY - 1) // CHECKPOINT_EVERY - 1
    return (count, *x_shape[1:]) if save and count > 0 else (0,)


def _empty(shape, dtype: torch.dtype, device: torch.device) -> Tensor:
    """Every output buffer comes from here (the tests fill them with NaN to catch unwritten elements)."""
    return torch.empty(shape, dtype=dtype, device=device)


def _interpreter_block(neurons: int) -> int:
    return min(_next_power_of_2(neurons), INTERPRETER_BLOCK)


def _next_power_of_2(n: int) -> int:
    return 1 << max(int(n) - 1, 0).bit_length()


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _on_device(x: Tensor, interpreted: bool):
    """Launch on x's GPU (Triton launches on the current device); nothing to do under the interpreter."""
    return torch.cuda.device(x.device) if x.is_cuda and not interpreted else contextlib.nullcontext()


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
register_backend("triton", run, supports, auto_devices=("cuda",))
