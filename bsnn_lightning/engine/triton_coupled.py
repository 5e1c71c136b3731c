"""The ``triton`` backend's coupled bifurcation: :class:`CoupledBifurcation` in one fused kernel forward and
one backward (:mod:`.triton_coupled_kernels`), behind the custom ops ``bsnn::triton_coupled`` and
``bsnn::triton_coupled_backward``, for any number of channels.

A kernel family of the triton backend: its row of :mod:`.triton_backend`'s dispatch table (added at the end of
this module) sends a coupled call to :func:`run`; the launch helpers (layouts, value modes, surrogates, the
interpreter switch, the output buffers) are that module's. A thread owns a position (a sample's pixel) and its
``C`` channels, ``ROWS`` at a time; up to :data:`CHANNEL_ROWS` channels the state stays in the thread's
registers, past that it is staged through a scratch buffer in global memory (two time steps of x's layout,
fp32), so the registers a thread needs no longer grow with ``C``. Compiled for sm_90 and sm_80 with the
ptxas of the triton wheel (``bench/kernels_static.py --set coupled``, through :func:`launch_plan` and
:func:`backward_launch_plan`, the plans the custom ops launch), no variant spills or uses local or
shared memory up to 64 channels (``docs/kernels.md`` has the registers).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor

from . import triton_backend as base
from . import triton_codes as codes
from .dynamics import CoupledBifurcation
from .reference import _sum_to_shape

#: output channels a thread computes at a time: the rows of its register tiles. A layer with at most this many
#: channels keeps its whole state in registers; a wider one stages it through the scratch, chunk by chunk.
CHANNEL_ROWS = 8
#: positions per program on a GPU: one per thread, 4 warps (fewer when there are fewer positions)
BLOCK = 128


def run(
    x: Tensor, v0: Tensor, dynamics: CoupledBifurcation, params: dict, return_v_seq: bool
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Backend entry point for a coupled call; arguments validated and broadcast by ``engine.multistep``.

    An empty batch launches nothing (see :func:`.triton_backend.run`):

    >>> x, v0 = torch.zeros(3, 0, 2), torch.zeros(0, 2)
    >>> params = {"coupling": -0.3 * torch.eye(2), "threshold": torch.tensor(1.0)}
    >>> spikes, v, v_seq = run(x, v0, CoupledBifurcation(), params, return_v_seq=False)
    >>> spikes.shape, v.shape, v_seq
    (torch.Size([3, 0, 2]), torch.Size([0, 2]), None)
    """
    coupling = params["coupling"]
    threshold = base._as_tensor(params["threshold"], x)
    save = torch.is_grad_enabled() and any(t.requires_grad for t in (x, v0, coupling, threshold))
    spikes, v_final, v_seq, _ = torch.ops.bsnn.triton_coupled(
        x, v0, coupling, threshold, *_config(dynamics), return_v_seq, save
    )
    return spikes, v_final, (v_seq if return_v_seq else None)


def _config(dynamics: CoupledBifurcation) -> tuple:
    """(reset, surrogate, sg_a, sg_b, detach_reset, v_reset): the static arguments of both ops."""
    settings = base._fire_then_reset(dynamics)
    surrogate = base._SURROGATES[dynamics.surrogate.name]
    sg_a, sg_b = surrogate.constants(dynamics.surrogate.alpha)
    return (
        settings["reset"], surrogate.code, sg_a, sg_b, settings["detach_reset"], settings.get("v_reset", 0.0)
    )


class _Shape:
    """x[T, N, C, *S'] as the kernels see it: P positions (samples x pixels) of C channels each, taken ROWS at a
    time (C_PAD: C rounded up to a multiple of ROWS)."""

    def __init__(self, x: Tensor):
        self.steps = x.shape[0]
        self.channels = x.shape[2]
        self.inner = math.prod(x.shape[3:])
        self.sample = self.channels * self.inner
        self.positions = x.shape[1] * self.inner
        self.rows = min(base._next_power_of_2(self.channels), CHANNEL_ROWS)
        self.c_pad = base._cdiv(self.channels, self.rows) * self.rows
        self.staged = self.c_pad > self.rows

    def launch(self, interpreted: bool) -> tuple[int, int]:
        """(positions per program, warps)."""
        if interpreted:
            block = min(base._next_power_of_2(self.positions), max(base.INTERPRETER_BLOCK // self.rows, 1))
            return block, 4
        block = min(BLOCK, max(32, base._next_power_of_2(self.positions)))
        return block, block // 32

    def scratch(self, device: torch.device) -> Tensor | None:
        """The staged path's scratch, two time steps of x's layout in fp32 (None in registers): the state
        forward, ``dL/dv`` and ``dL/dh`` backward."""
        if not self.staged:
            return None
        return base._empty((2, self.positions // self.inner, self.channels, self.inner), torch.float32, device)


def launch_plan(
    x: Tensor, v0: Tensor, dynamics: CoupledBifurcation, params: dict, *, return_v_seq: bool = False,
    save: bool = False,
) -> base.LaunchPlan:  # fmt: skip
    """The forward kernel's launch for a coupled call of :func:`run` (``save``: keep the charged potentials a
    backward needs), without launching it (:class:`.triton_backend.LaunchPlan`).

    >>> x, v0 = torch.rand(4, 2, 3), torch.zeros(2, 3)  # 3 channels coupled by a 3 x 3 matrix
    >>> params = {"coupling": -0.3 * torch.eye(3), "threshold": 1.0}
    >>> plan = launch_plan(x, v0, CoupledBifurcation(), params, save=True)
    >>> plan.kernel_name, [tuple(t.shape) for t in plan.outputs]  # spikes, v_final, no v_seq, h_seq
    ('coupled_forward_kernel', [(4, 2, 3), (2, 3), (0,), (4, 2, 3)])
    """
    threshold = base._as_tensor(params["threshold"], x)
    return _forward_plan(x, v0, params["coupling"], threshold, *_config(dynamics), return_v_seq, save)


def backward_launch_plan(
    x: Tensor, v0: Tensor, dynamics: CoupledBifurcation, params: dict, *, h_seq: Tensor,
    grad_spikes: Tensor | None = None, grad_v_final: Tensor | None = None, grad_v_seq: Tensor | None = None,
    needs: tuple[bool, bool, bool, bool] = (True, False, False, False),
) -> base.LaunchPlan:  # fmt: skip
    """The backward kernel's launch for the same call: ``h_seq`` the forward's charged potentials (its plan's
    ``outputs[3]``), ``needs`` the flags of the gradients wanted for (x, v0, the coupling, the threshold). The
    coupling's gradient is a matrix product after the launch, over the buffers ``outputs[3:]``.

    >>> x, v0 = torch.rand(4, 2, 3), torch.zeros(2, 3)
    >>> params = {"coupling": -0.3 * torch.eye(3), "threshold": 1.0}
    >>> h_seq = launch_plan(x, v0, CoupledBifurcation(), params, save=True).outputs[3]
    >>> plan = backward_launch_plan(x, v0, CoupledBifurcation(), params, h_seq=h_seq, grad_spikes=torch.ones_like(x))
    >>> plan.kernel_name, plan.outputs[0].shape  # x's gradient first
    ('coupled_backward_kernel', torch.Size([4, 2, 3]))
    """
    threshold = base._as_tensor(params["threshold"], x)
    grads = (grad_spikes, grad_v_final, grad_v_seq)
    return _backward_plan(grads, x, h_seq, v0, params["coupling"], threshold, *_config(dynamics), *needs)


def _forward_impl(
    x: Tensor, v0: Tensor, coupling: Tensor, threshold: Tensor,
    reset: int, surrogate: int, sg_a: float, sg_b: float, detach_reset: bool, v_reset: float,
    return_v_seq: bool, save: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:  # fmt: skip
    """Forward: (spikes in x's dtype, v_final fp32, v_seq fp32 or empty, h_seq fp32 when ``save`` or empty)."""
    return _forward_plan(
        x, v0, coupling, threshold, reset, surrogate, sg_a, sg_b, detach_reset, v_reset, return_v_seq, save
    ).launch()


def _forward_plan(
    x: Tensor, v0: Tensor, coupling: Tensor, threshold: Tensor,
    reset: int, surrogate: int, sg_a: float, sg_b: float, detach_reset: bool, v_reset: float,
    return_v_seq: bool, save: bool,
) -> base.LaunchPlan:  # fmt: skip
    spikes = base._empty(x.shape, x.dtype, x.device)
    v_final = base._empty(x.shape[1:], torch.float32, x.device)
    v_seq = base._empty(x.shape if return_v_seq else (0,), torch.float32, x.device)
    h_seq = base._empty(x.shape if save else (0,), torch.float32, x.device)
    outputs = (spikes, v_final, v_seq, h_seq)
    shape = _Shape(x)
    if x.numel() == 0:
        return base.LaunchPlan.nothing(outputs)
    kernels = _kernels()
    x, v0, coupling, threshold = x.contiguous(), v0.contiguous(), coupling.contiguous(), threshold.contiguous()
    interpreted = base._interpreted(base._kernels())
    block, warps = shape.launch(interpreted)
    scratch = shape.scratch(x.device)
    return base.LaunchPlan(
        kernels.coupled_forward_kernel, (base._cdiv(shape.positions, block),),
        args=(
            x, v0, coupling.t().contiguous(), threshold,
            spikes, v_final, v_seq if return_v_seq else v_final, h_seq if save else v_final,
            scratch if scratch is not None else v_final,
            shape.steps, shape.positions, shape.sample, shape.inner,
            v_reset,
        ),
        constexprs=dict(
            C=shape.channels, C_PAD=shape.c_pad, ROWS=shape.rows, RESET=reset,
            V0_MODE=base._mode(v0, x, allow_full=True), TH_MODE=base._mode(threshold, x),
            STORE_V_SEQ=return_v_seq, SAVE_H=save, BLOCK=block, WIDE=_wide(x, scratch),
        ),
        num_warps=warps, device=x.device, interpreted=interpreted, outputs=outputs,
    )  # fmt: skip


def _forward_fake(x, v0, coupling, threshold, *config_and_flags):
    return_v_seq, save = config_and_flags[-2:]
    return (
        x.new_empty(x.shape),
        x.new_empty(x.shape[1:], dtype=torch.float32),
        x.new_empty(x.shape if return_v_seq else (0,), dtype=torch.float32),
        x.new_empty(x.shape if save else (0,), dtype=torch.float32),
    )


def _backward_impl(
    grad_spikes: Optional[Tensor], grad_v_final: Optional[Tensor], grad_v_seq: Optional[Tensor],
    x: Tensor, h_seq: Tensor, v0: Tensor, coupling: Tensor, threshold: Tensor,
    reset: int, surrogate: int, sg_a: float, sg_b: float, detach_reset: bool, v_reset: float,
    need_x: bool, need_v0: bool, need_coupling: bool, need_threshold: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:  # fmt: skip
    """Backward: grad_x (x's dtype), the per-neuron time-summed gradient of v0 (fp32), the gradient of the
    coupling ([C, C], fp32) and the per-neuron time-summed gradient of the threshold (fp32); each empty when
    its ``need_*`` flag is off. ``x`` gives the shape and dtype only (a forward that saves ``h_seq`` does not
    read it again)."""
    grads = (grad_spikes, grad_v_final, grad_v_seq)
    plan = _backward_plan(grads, x, h_seq, v0, coupling, threshold, reset, surrogate, sg_a, sg_b, detach_reset,
                          v_reset, need_x, need_v0, need_coupling, need_threshold)  # fmt: skip
    grad_x, grad_v0, grad_threshold, grad_h, v_prev = plan.launch()
    if x.numel() == 0:
        grad_coupling = torch.zeros(coupling.shape if need_coupling else (0,), dtype=torch.float32, device=x.device)
    elif need_coupling:
        # dL/dA_ij = sum over time, batch and pixels of gh_i v_j, read in place (no transposed copies): one
        # matrix product over [T N, C] for 1-d samples, else a batched one over [T N] of [C, INNER] x [INNER, C]
        shape = _Shape(x)
        gh = (grad_h if grad_h.numel() else grad_x).reshape(-1, shape.channels, shape.inner)
        vp = v_prev.reshape(-1, shape.channels, shape.inner)
        if shape.inner == 1:
            grad_coupling = gh[:, :, 0].transpose(0, 1) @ vp[:, :, 0]
        else:
            grad_coupling = torch.bmm(gh, vp.transpose(1, 2)).sum(0)
    else:
        grad_coupling = torch.empty(0, dtype=torch.float32, device=x.device)
    return grad_x, grad_v0, grad_coupling, grad_threshold


def _backward_plan(
    grads: tuple, x: Tensor, h_seq: Tensor, v0: Tensor, coupling: Tensor, threshold: Tensor,
    reset: int, surrogate: int, sg_a: float, sg_b: float, detach_reset: bool, v_reset: float,
    need_x: bool, need_v0: bool, need_coupling: bool, need_threshold: bool,
) -> base.LaunchPlan:  # fmt: skip
    """The backward launch; its outputs are (grad_x, grad_v0, grad_threshold, grad_h, v_prev): the last two the
    buffers the coupling's gradient is computed from (grad_h empty when grad_x, in fp32, holds dL/dh)."""
    grad_x = base._empty(x.shape if need_x else (0,), x.dtype, x.device)
    grad_v0 = base._empty(x.shape[1:] if need_v0 else (0,), torch.float32, x.device)
    grad_threshold = base._empty(x.shape[1:] if need_threshold else (0,), torch.float32, x.device)
    shape = _Shape(x)
    if x.numel() == 0:
        empty = torch.empty(0, dtype=torch.float32, device=x.device)
        return base.LaunchPlan.nothing((grad_x, grad_v0, grad_threshold, empty, empty))
    if h_seq.shape != x.shape:
        raise RuntimeError(
            "the coupled backward needs the charged potentials the forward saves when a gradient is wanted "
            "(save=True); this forward ran with save=False"
        )
    # dL/dA sums dL/dh_t v_{t-1}^T: the kernel writes v_{t-1}, and dL/dh in fp32 unless grad_x is that already
    reuse_grad_x = need_x and x.dtype == torch.float32
    grad_h = base._empty(x.shape if need_coupling and not reuse_grad_x else (0,), torch.float32, x.device)
    v_prev = base._empty(x.shape if need_coupling else (0,), torch.float32, x.device)
    kernels = _kernels()
    v0, coupling, threshold = v0.contiguous(), coupling.contiguous(), threshold.contiguous()
    grads = [g.contiguous() if g is not None else None for g in grads]
    interpreted = base._interpreted(base._kernels())
    block, warps = shape.launch(interpreted)
    scratch = shape.scratch(x.device)
    dummy = h_seq
    return base.LaunchPlan(
        kernels.coupled_backward_kernel, (base._cdiv(shape.positions, block),),
        args=(
            h_seq, v0, coupling, threshold,
            *[g if g is not None else dummy for g in grads],
            grad_x if need_x else dummy, grad_h if grad_h.numel() else dummy, v_prev if need_coupling else dummy,
            grad_v0 if need_v0 else dummy, grad_threshold if need_threshold else dummy,
            scratch if scratch is not None else dummy,
            shape.steps, shape.positions, shape.sample, shape.inner,
            v_reset, sg_a, sg_b,
        ),
        constexprs=dict(
            C=shape.channels, C_PAD=shape.c_pad, ROWS=shape.rows,
            RESET=reset, DETACH_RESET=detach_reset, SURROGATE=surrogate,
            V0_MODE=base._mode(v0, x, allow_full=True), TH_MODE=base._mode(threshold, x),
            HAS_GS=grads[0] is not None, HAS_GV_FINAL=grads[1] is not None,
            HAS_GV_SEQ=grads[2] is not None and grads[2].numel() > 0,
            NEED_X=need_x, STORE_GH=grad_h.numel() > 0, STORE_V_PREV=need_coupling,
            NEED_V0=need_v0, NEED_TH=need_threshold,
            BLOCK=block, WIDE=_wide(x, scratch),
        ),
        num_warps=warps, device=x.device, interpreted=interpreted,
        outputs=(grad_x, grad_v0, grad_threshold, grad_h, v_prev),
    )  # fmt: skip


def _backward_fake(grad_spikes, grad_v_final, grad_v_seq, x, h_seq, v0, coupling, threshold, *config_and_needs):
    need_x, need_v0, need_coupling, need_threshold = config_and_needs[-4:]
    return (
        x.new_empty(x.shape if need_x else (0,)),
        x.new_empty(x.shape[1:] if need_v0 else (0,), dtype=torch.float32),
        x.new_empty(coupling.shape if need_coupling else (0,), dtype=torch.float32),
        x.new_empty(x.shape[1:] if need_threshold else (0,), dtype=torch.float32),
    )


_CONFIG_INPUTS = 6  # reset, surrogate, sg_a, sg_b, detach_reset, v_reset


def _setup_context(ctx, inputs, output):
    x, v0, coupling, threshold, *static = inputs
    ctx.config = tuple(static[:_CONFIG_INPUTS])
    ctx.static_inputs = len(static)
    ctx.x_meta = x.new_empty((1,)).expand(x.shape)  # x's shape, dtype and device, one element of storage
    ctx.save_for_backward(output[3], v0, coupling, threshold)
    ctx.mark_non_differentiable(output[3])
    ctx.set_materialize_grads(False)


def _autograd_backward(ctx, grad_spikes, grad_v_final, grad_v_seq, _grad_h_seq):
    h_seq, v0, coupling, threshold = ctx.saved_tensors
    need = [bool(n) for n in ctx.needs_input_grad[:4]]
    grad_x, grad_v0, grad_coupling, grad_threshold = torch.ops.bsnn.triton_coupled_backward(
        grad_spikes, grad_v_final, grad_v_seq, ctx.x_meta, h_seq, v0, coupling, threshold, *ctx.config, *need
    )
    state_shape = ctx.x_meta.shape[1:]
    return (
        grad_x if need[0] else None,
        _sum_to_shape(grad_v0.view(state_shape), v0.shape).to(v0.dtype) if need[1] else None,
        grad_coupling.to(coupling.dtype) if need[2] else None,
        _sum_to_shape(grad_threshold.view(state_shape), threshold.shape).to(threshold.dtype) if need[3] else None,
    ) + (None,) * ctx.static_inputs


def _wide(x: Tensor, scratch: Tensor | None) -> bool:
    """64-bit offsets when x or the scratch (twice x's size at T = 1) has 2**31 elements or more."""
    return base._wide(x) or (scratch is not None and base._wide(scratch))


def _kernels():
    """The kernel module, imported (so compiled or interpreted, per TRITON_INTERPRET) on first use."""
    from . import triton_coupled_kernels

    return triton_coupled_kernels


if base._HAS_CUSTOM_OPS:
    _forward = torch.library.custom_op("bsnn::triton_coupled", _forward_impl, mutates_args=())
    _forward.register_fake(_forward_fake)
    _backward = torch.library.custom_op("bsnn::triton_coupled_backward", _backward_impl, mutates_args=())
    _backward.register_fake(_backward_fake)
    _forward.register_autograd(_autograd_backward, setup_context=_setup_context)

# the coupled bifurcation's row of the triton backend's dispatch table: fire, reset and their backward are the
# diagonal bifurcation's with 1 + lambda = 1; the mixing and the launch are this module's
base._FUSED[CoupledBifurcation] = base._Fused(
    codes.DIAGONAL_BIFURCATION, None, base._fire_then_reset, run=run
)
