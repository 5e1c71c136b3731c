"""The Triton kernels of :class:`~bsnn_lightning.engine.dynamics.CoupledBifurcation`: ``h_t = A v_{t-1} + x_t``.

The mixing couples the ``C`` channels of one position (one sample, one pixel), so a program owns positions,
not neurons: ``BLOCK`` positions, one per thread, each with all its channels as the rows of a
``[C_PAD, BLOCK]`` register tile (``C_PAD`` the next power of two). The launcher is
:mod:`bsnn_lightning.engine.triton_coupled`; what it fuses is bounded by the registers a thread needs for its
position's ``C`` states (``triton_coupled.MAX_CHANNELS``).

Layout: x is ``[T, N, C, INNER]`` (``INNER`` the product of the spatial dimensions), one time step
contiguous. Position ``p`` is sample ``p // INNER``, pixel ``p % INNER``; its neuron of channel ``c`` is
``m = (p // INNER) * SAMPLE + c * INNER + p % INNER`` with ``SAMPLE = C * INNER``, so that a per-channel,
per-neuron or full-state value is found as the elementwise kernels find it.

- **Mixing**, in the reference's order (:func:`~bsnn_lightning.engine.dynamics._mix_channels`):
  ``acc = A[:, 0] v_0``, then ``acc = acc + A[:, j] v_j`` for ``j = 1 .. C - 1``, then ``h = acc + x``;
  the launcher turns off FMA contraction, so every product and sum is rounded as in eager PyTorch and the
  state is the reference's to the bit. ``A``'s column ``j`` is read from memory (the same addresses in every
  thread: broadcast, cached; the forward takes ``A^T`` so that a column is contiguous, read with vector
  loads) and row ``j`` of the state is a register of the thread. That is ``C`` multiplies and ``C`` adds per
  neuron-step, so the instructions grow with ``C`` (``docs/kernels.md`` counts them).
- **Forward** reads x, writes the spikes (x's dtype), the final state (fp32), ``v_seq`` when asked and, when
  a gradient will be needed, the charged potentials ``h`` (fp32), which is what the reference saves too. A
  recompute as in the elementwise kernels would keep ``[CHUNK, C_PAD]`` values per thread, more registers than
  a thread has for all but the smallest ``C``. The next step's x is loaded before the current step's stores.
- **Backward** walks time backwards, reading ``h_{t-1}`` (whose fire and reset give ``v_{t-1}``; ``h_t`` is
  the previous iteration's) and the upstream gradients of step t (not a step ahead: the registers that would
  take are what lets 16 channels fit). Fire, reset and ``dL/dh`` are the elementwise kernels' for the diagonal
  dynamics with ``1 + lambda = 1`` (the coupled step without its mixing); ``dL/dv_{t-1} = A^T dL/dh`` is mixed
  in the same fixed order (a gradient need not be exact; the order is simply the one at hand), before the
  step's stores. For the gradient of ``A``, which sums ``dL/dh_t v_{t-1}^T`` over time, batch and pixels, it
  writes ``v_{t-1}`` (fp32) and, for 16-bit inputs, ``dL/dh`` in fp32 (for fp32 inputs it is ``grad_x``
  itself); the launcher then reads both in a (batched) matrix product. Threshold and initial-state gradients
  are summed over time per neuron, as in the elementwise kernels.
"""

from __future__ import annotations

import triton
import triton.language as tl

from .triton_kernels import (
    DIAGONAL_BIFURCATION,
    _backward_step,
    _fire,
    _load_value,
    _mask_if,
    _reset,
    _row,
)


@triton.jit(do_not_specialize=["SAMPLE", "INNER"])
def coupled_forward_kernel(
    x_ptr, v0_ptr, at_ptr, th_ptr,
    spikes_ptr, v_final_ptr, v_seq_ptr, h_seq_ptr,
    T, P, SAMPLE, INNER,
    v_reset,
    C: tl.constexpr, C_PAD: tl.constexpr, RESET: tl.constexpr,
    V0_MODE: tl.constexpr, TH_MODE: tl.constexpr,
    STORE_V_SEQ: tl.constexpr, SAVE_H: tl.constexpr, BLOCK: tl.constexpr, WIDE: tl.constexpr,
):  # fmt: skip
    channel, m, mask, stride = _positions(P, SAMPLE, INNER, C, C_PAD, BLOCK, WIDE)
    v = tl.where(mask, _load_value(v0_ptr, m, mask, V0_MODE, SAMPLE, INNER, C), 0.0)
    threshold = _load_value(th_ptr, m, mask, TH_MODE, SAMPLE, INNER, C)
    x_next = tl.load(x_ptr + m, mask=mask, other=0.0)
    for t in range(0, T):
        x_t = x_next.to(tl.float32)
        # the next step's input before this step's stores (which would hold back any later load)
        x_next = tl.load(x_ptr + (t + 1) * stride + m, mask=_mask_if(mask, t + 1 < T), other=0.0)
        h = _mix(at_ptr, v, channel, C) + x_t  # A v: column j of A is row j of A^T
        s = _fire(h, threshold, 1.0, DIAGONAL_BIFURCATION)
        v = _reset(h, s, v, threshold, 1.0, v_reset, DIAGONAL_BIFURCATION, RESET)
        offset = t * stride + m
        tl.store(spikes_ptr + offset, s.to(spikes_ptr.dtype.element_ty), mask=mask)
        if STORE_V_SEQ:
            tl.store(v_seq_ptr + offset, v, mask=mask)
        if SAVE_H:
            tl.store(h_seq_ptr + offset, h, mask=mask)
    tl.store(v_final_ptr + m, v, mask=mask)


@triton.jit(do_not_specialize=["SAMPLE", "INNER"])
def coupled_backward_kernel(
    h_seq_ptr, v0_ptr, a_ptr, th_ptr,
    gs_ptr, gv_final_ptr, gv_seq_ptr,
    gx_ptr, gh_ptr, v_prev_ptr, gv0_ptr, gth_ptr,
    T, P, SAMPLE, INNER,
    v_reset, sg_a, sg_b,
    C: tl.constexpr, C_PAD: tl.constexpr, RESET: tl.constexpr, DETACH_RESET: tl.constexpr,
    SURROGATE: tl.constexpr, V0_MODE: tl.constexpr, TH_MODE: tl.constexpr,
    HAS_GS: tl.constexpr, HAS_GV_FINAL: tl.constexpr, HAS_GV_SEQ: tl.constexpr,
    NEED_X: tl.constexpr, STORE_GH: tl.constexpr, STORE_V_PREV: tl.constexpr,
    NEED_V0: tl.constexpr, NEED_TH: tl.constexpr,
    BLOCK: tl.constexpr, WIDE: tl.constexpr,
):  # fmt: skip
    channel, m, mask, stride = _positions(P, SAMPLE, INNER, C, C_PAD, BLOCK, WIDE)
    threshold = _load_value(th_ptr, m, mask, TH_MODE, SAMPLE, INNER, C)
    if HAS_GV_FINAL:
        carry = tl.load(gv_final_ptr + m, mask=mask, other=0.0).to(tl.float32)
    else:
        carry = tl.zeros((C_PAD, BLOCK), tl.float32)
    acc_th = tl.zeros((C_PAD, BLOCK), tl.float32)

    h = tl.load(h_seq_ptr + (T - 1) * stride + m, mask=mask, other=0.0)
    for tt in range(0, T):
        t = T - 1 - tt
        h_prev_t, gs_t, gvs_t = _backward_loads(h_seq_ptr, gs_ptr, gv_seq_ptr, t, stride, m, mask, HAS_GS, HAS_GV_SEQ)
        # v_{t-1}: the fire and reset of h_{t-1} (v_{t-2} is not needed), or the initial state
        s_prev = _fire(h_prev_t, threshold, 1.0, DIAGONAL_BIFURCATION)
        v_prev = _reset(h_prev_t, s_prev, 0.0, threshold, 1.0, v_reset, DIAGONAL_BIFURCATION, RESET)
        # at t = 0 the initial state, read there rather than kept in registers through the loop
        v_prev = tl.where(t > 0, v_prev, _load_value(v0_ptr, m, _mask_if(mask, t == 0), V0_MODE, SAMPLE, INNER, C))
        gv = carry + gvs_t
        # the diagonal step with 1 + lambda = 1: dL/dh (= dL/dx) and the threshold's term
        gh, _gv_unmixed, _d0, d_th, _d2 = _backward_step(
            gs_t, gv, h, v_prev, 1.0, 1.0, 1.0, threshold, 1.0, v_reset, sg_a, sg_b,
            DIAGONAL_BIFURCATION, RESET, False, DETACH_RESET, SURROGATE,
        )  # fmt: skip
        # A^T dL/dh (column j of A^T is row j of A), before this step's stores, which would hold back its loads
        carry = _mix(a_ptr, gh, channel, C)
        offset = t * stride + m
        if NEED_X:
            tl.store(gx_ptr + offset, gh.to(gx_ptr.dtype.element_ty), mask=mask)
        if STORE_GH:
            tl.store(gh_ptr + offset, gh, mask=mask)
        if STORE_V_PREV:
            tl.store(v_prev_ptr + offset, v_prev, mask=mask)
        if NEED_TH:
            acc_th = acc_th + d_th
        h = h_prev_t

    if NEED_V0:
        tl.store(gv0_ptr + m, carry, mask=mask)
    if NEED_TH:
        tl.store(gth_ptr + m, acc_th, mask=mask)


@triton.jit
def _positions(P, SAMPLE, INNER, C: tl.constexpr, C_PAD: tl.constexpr, BLOCK: tl.constexpr, WIDE: tl.constexpr):
    """This program's ``[C_PAD, BLOCK]`` tile of neurons: the channel of each row, the neuron index ``m`` of
    each element, its mask (a real channel of a real position) and the stride of a time step; 64-bit offsets
    when x has 2**31 elements or more (WIDE)."""
    channel = tl.arange(0, C_PAD)[:, None]
    if WIDE:
        p = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        stride = tl.full((), P, tl.int64) * C
    else:
        p = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        stride = P * C
    base = (p // INNER) * SAMPLE + p % INNER
    m = base[None, :] + channel * INNER
    mask = (channel < C) & (p < P)[None, :]
    return channel, m, mask, stride


@triton.jit
def _mix(m_ptr, v, channel, C: tl.constexpr):
    """``out[i] = sum_j M[i, j] v[j]`` over ``j = 0 .. C - 1`` in this order, each product and sum rounded,
    for ``M`` stored column by column (``M[i, j] = m[j * C + i]``): a column is contiguous, so a thread reads it
    with vector loads, and every thread reads the same addresses. Row j of v is a register of the thread."""
    rows = channel < C
    out = tl.load(m_ptr + channel, mask=rows, other=0.0).to(tl.float32) * _row(v, channel, 0)[None, :]
    for j in tl.static_range(1, C):
        out = out + tl.load(m_ptr + j * C + channel, mask=rows, other=0.0).to(tl.float32) * _row(v, channel, j)[None, :]
    return out


@triton.jit
def _backward_loads(h_seq_ptr, gs_ptr, gv_seq_ptr, t, stride, m, mask, HAS_GS: tl.constexpr, HAS_GV_SEQ: tl.constexpr):
    """What step ``t`` of the backward reads: ``h_{t-1}`` (zeros at t = 0), ``dL/ds_t``, ``dL/dv_t`` from
    ``v_seq`` (zeros when absent, or for t < 0: the step after the last)."""
    h_prev = tl.load(h_seq_ptr + (t - 1) * stride + m, mask=_mask_if(mask, t > 0), other=0.0)
    if HAS_GS:
        gs = tl.load(gs_ptr + t * stride + m, mask=_mask_if(mask, t >= 0), other=0.0).to(tl.float32)
    else:
        gs = tl.zeros(m.shape, tl.float32)
    if HAS_GV_SEQ:
        gvs = tl.load(gv_seq_ptr + t * stride + m, mask=_mask_if(mask, t >= 0), other=0.0).to(tl.float32)
    else:
        gvs = tl.zeros(m.shape, tl.float32)
    return h_prev, gs, gvs
