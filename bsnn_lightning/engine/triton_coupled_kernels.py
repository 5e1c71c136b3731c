"""The Triton kernels of :class:`~bsnn_lightning.engine.dynamics.CoupledBifurcation`: ``h_t = A v_{t-1} + x_t``.

The mixing couples the ``C`` channels of one position (one sample, one pixel), so a program owns positions,
not neurons: ``BLOCK`` positions, one per thread, their channels taken ``ROWS`` at a time as the rows of a
``[ROWS, BLOCK]`` register tile (``ROWS`` a power of two; ``C_PAD`` is ``C`` rounded up to a multiple of it).
The launcher is :mod:`bsnn_lightning.engine.triton_coupled`; it picks ``ROWS``, and with it one of two paths:

- **in registers** (``C_PAD == ROWS``: few channels): the thread keeps its position's ``C`` states in one tile
  through the time loop; ``A``'s columns are read from memory (the same addresses in every thread: broadcast,
  cached) and row ``j`` of the state is a register of the thread.
- **staged** (more channels): the state lives in a scratch buffer in global memory, two time steps of x's
  layout in fp32 (step t reads ``v_{t-1}`` from one and writes ``v_t`` to the other), and each step computes
  the output channels one chunk of ``ROWS`` at a time, reading ``v_{t-1}`` back ``ROWS`` channels at a time,
  as a tile of the output's shape and layout, for every ``j``. So a thread holds ``ROWS`` channels whatever
  ``C`` is, and registers no longer bound the channels. Exact: a float32 stored and loaded again is the same
  float32, and a barrier after each phase (``bar.sync``, which also orders the CTA's global memory accesses)
  puts every write of step t before any read of step t + 1 and every read before the next overwrite, whichever
  threads Triton's layout gives a position's rows to (a program touches only its own positions).

Layout: x is ``[T, N, C, INNER]`` (``INNER`` the product of the spatial dimensions), one time step
contiguous. Position ``p`` is sample ``p // INNER``, pixel ``p % INNER``; its neuron of channel ``c`` is
``m = (p // INNER) * SAMPLE + c * INNER + p % INNER`` with ``SAMPLE = C * INNER``, so that a per-channel,
per-neuron or full-state value is found as the elementwise kernels find it.

- **Mixing**, in the reference's order (:func:`~bsnn_lightning.engine.dynamics._mix_channels`):
  ``acc = A[:, 0] v_0``, then ``acc = acc + A[:, j] v_j`` for ``j = 1 .. C - 1``, then ``h = acc + x``;
  the launcher turns off FMA contraction, so every product and sum is rounded as in eager PyTorch and the
  state is the reference's to the bit. Splitting the output channels into chunks changes no sum: each output
  channel's sum runs over every ``j`` in order. The forward takes ``A^T`` so that a column of ``A`` is
  contiguous (read with vector loads).
- **Forward** reads x, writes the spikes (x's dtype), the final state (fp32), ``v_seq`` when asked and, when
  a gradient will be needed, the charged potentials ``h`` (fp32), which is what the reference saves too.
- **Backward** walks time backwards, reading ``h_t`` and ``h_{t-1}`` (whose fire and reset give ``v_{t-1}``)
  and the upstream gradients of step t. Fire, reset and ``dL/dh`` are the elementwise kernels' for the
  diagonal dynamics with ``1 + lambda = 1`` (the coupled step without its mixing); ``dL/dv_{t-1} = A^T dL/dh``
  is mixed in the same fixed order (a gradient need not be exact; the order is simply the one at hand). Staged,
  a step has two phases: ``dL/dh`` of every chunk (from ``dL/dv_t``, read from the scratch), written to the
  scratch; a barrier; ``A^T dL/dh`` of every chunk, read back from there, written as the next ``dL/dv``; a
  barrier. For the gradient of ``A``, which sums ``dL/dh_t v_{t-1}^T`` over time, batch and pixels, it writes
  ``v_{t-1}`` (fp32) and, for 16-bit inputs, ``dL/dh`` in fp32 (for fp32 inputs it is ``grad_x`` itself); the
  launcher then reads both in a (batched) matrix product. Threshold and initial-state gradients are summed over
  time per neuron, as in the elementwise kernels (staged: in the output buffer, which only this program's
  threads touch).
"""

from __future__ import annotations

import triton
import triton.language as tl

from triton.runtime.interpreter import InterpretedFunction

from .triton_kernels import (
    DIAGONAL_BIFURCATION,
    _backward_step,
    _fire,
    _load_value,
    _mask_if,
    _reset,
)


@triton.jit(do_not_specialize=["SAMPLE", "INNER"])
def coupled_forward_kernel(
    x_ptr, v0_ptr, at_ptr, th_ptr,
    spikes_ptr, v_final_ptr, v_seq_ptr, h_seq_ptr, scratch_ptr,
    T, P, SAMPLE, INNER,
    v_reset,
    C: tl.constexpr, C_PAD: tl.constexpr, ROWS: tl.constexpr, RESET: tl.constexpr,
    V0_MODE: tl.constexpr, TH_MODE: tl.constexpr,
    STORE_V_SEQ: tl.constexpr, SAVE_H: tl.constexpr, BLOCK: tl.constexpr, WIDE: tl.constexpr,
):  # fmt: skip
    base, inside, stride = _positions(P, SAMPLE, INNER, C, BLOCK, WIDE)
    if C_PAD == ROWS:
        _forward_in_registers(
            x_ptr, v0_ptr, at_ptr, th_ptr, spikes_ptr, v_final_ptr, v_seq_ptr, h_seq_ptr,
            T, SAMPLE, INNER, v_reset, base, inside, stride,
            C, ROWS, RESET, V0_MODE, TH_MODE, STORE_V_SEQ, SAVE_H,
        )  # fmt: skip
    else:
        _forward_staged(
            x_ptr, v0_ptr, at_ptr, th_ptr, spikes_ptr, v_final_ptr, v_seq_ptr, h_seq_ptr, scratch_ptr,
            T, SAMPLE, INNER, v_reset, base, inside, stride,
            C, C_PAD, ROWS, RESET, V0_MODE, TH_MODE, STORE_V_SEQ, SAVE_H,
        )  # fmt: skip


@triton.jit(do_not_specialize=["SAMPLE", "INNER"])
def coupled_backward_kernel(
    h_seq_ptr, v0_ptr, a_ptr, th_ptr,
    gs_ptr, gv_final_ptr, gv_seq_ptr,
    gx_ptr, gh_ptr, v_prev_ptr, gv0_ptr, gth_ptr, scratch_ptr,
    T, P, SAMPLE, INNER,
    v_reset, sg_a, sg_b,
    C: tl.constexpr, C_PAD: tl.constexpr, ROWS: tl.constexpr, RESET: tl.constexpr, DETACH_RESET: tl.constexpr,
    SURROGATE: tl.constexpr, V0_MODE: tl.constexpr, TH_MODE: tl.constexpr,
    HAS_GS: tl.constexpr, HAS_GV_FINAL: tl.constexpr, HAS_GV_SEQ: tl.constexpr,
    NEED_X: tl.constexpr, STORE_GH: tl.constexpr, STORE_V_PREV: tl.constexpr,
    NEED_V0: tl.constexpr, NEED_TH: tl.constexpr,
    BLOCK: tl.constexpr, WIDE: tl.constexpr,
):  # fmt: skip
    base, inside, stride = _positions(P, SAMPLE, INNER, C, BLOCK, WIDE)
    if C_PAD == ROWS:
        _backward_in_registers(
            h_seq_ptr, v0_ptr, a_ptr, th_ptr, gs_ptr, gv_final_ptr, gv_seq_ptr,
            gx_ptr, gh_ptr, v_prev_ptr, gv0_ptr, gth_ptr,
            T, SAMPLE, INNER, v_reset, sg_a, sg_b, base, inside, stride,
            C, ROWS, RESET, DETACH_RESET, SURROGATE, V0_MODE, TH_MODE, HAS_GS, HAS_GV_FINAL, HAS_GV_SEQ,
            NEED_X, STORE_GH, STORE_V_PREV, NEED_V0, NEED_TH,
        )  # fmt: skip
    else:
        _backward_staged(
            h_seq_ptr, v0_ptr, a_ptr, th_ptr, gs_ptr, gv_final_ptr, gv_seq_ptr,
            gx_ptr, gh_ptr, v_prev_ptr, gv0_ptr, gth_ptr, scratch_ptr,
            T, SAMPLE, INNER, v_reset, sg_a, sg_b, base, inside, stride,
            C, C_PAD, ROWS, RESET, DETACH_RESET, SURROGATE, V0_MODE, TH_MODE, HAS_GS, HAS_GV_FINAL, HAS_GV_SEQ,
            NEED_X, STORE_GH, STORE_V_PREV, NEED_V0, NEED_TH,
        )  # fmt: skip


# --- in registers: every channel of a position in one tile -----------------------------------------------


@triton.jit
def _forward_in_registers(
    x_ptr, v0_ptr, at_ptr, th_ptr, spikes_ptr, v_final_ptr, v_seq_ptr, h_seq_ptr,
    T, SAMPLE, INNER, v_reset, base, inside, stride,
    C: tl.constexpr, ROWS: tl.constexpr, RESET: tl.constexpr, V0_MODE: tl.constexpr, TH_MODE: tl.constexpr,
    STORE_V_SEQ: tl.constexpr, SAVE_H: tl.constexpr,
):  # fmt: skip
    channel = tl.arange(0, ROWS)[:, None]
    m, mask = _chunk(base, inside, channel, C, INNER)
    v = tl.where(mask, _load_value(v0_ptr, m, mask, V0_MODE, SAMPLE, INNER, C), 0.0)
    threshold = _load_value(th_ptr, m, mask, TH_MODE, SAMPLE, INNER, C)
    x_next = tl.load(x_ptr + m, mask=mask, other=0.0)
    for t in range(0, T):
        x_t = x_next.to(tl.float32)
        # the next step's input before this step's stores (which would hold back any later load)
        x_next = tl.load(x_ptr + (t + 1) * stride + m, mask=_mask_if(mask, t + 1 < T), other=0.0)
        h = _mix_registers(at_ptr, v, channel, C) + x_t  # A v: column j of A is row j of A^T
        v = _fire_reset_and_store(
            h, threshold, v_reset, spikes_ptr, v_seq_ptr, h_seq_ptr, t * stride + m, mask, RESET, STORE_V_SEQ, SAVE_H
        )
    tl.store(v_final_ptr + m, v, mask=mask)


@triton.jit
def _backward_in_registers(
    h_seq_ptr, v0_ptr, a_ptr, th_ptr, gs_ptr, gv_final_ptr, gv_seq_ptr,
    gx_ptr, gh_ptr, v_prev_ptr, gv0_ptr, gth_ptr,
    T, SAMPLE, INNER, v_reset, sg_a, sg_b, base, inside, stride,
    C: tl.constexpr, ROWS: tl.constexpr, RESET: tl.constexpr, DETACH_RESET: tl.constexpr,
    SURROGATE: tl.constexpr, V0_MODE: tl.constexpr, TH_MODE: tl.constexpr,
    HAS_GS: tl.constexpr, HAS_GV_FINAL: tl.constexpr, HAS_GV_SEQ: tl.constexpr,
    NEED_X: tl.constexpr, STORE_GH: tl.constexpr, STORE_V_PREV: tl.constexpr,
    NEED_V0: tl.constexpr, NEED_TH: tl.constexpr,
):  # fmt: skip
    channel = tl.arange(0, ROWS)[:, None]
    m, mask = _chunk(base, inside, channel, C, INNER)
    threshold = _load_value(th_ptr, m, mask, TH_MODE, SAMPLE, INNER, C)
    if HAS_GV_FINAL:
        carry = tl.load(gv_final_ptr + m, mask=mask, other=0.0).to(tl.float32)
    else:
        carry = tl.zeros(m.shape, tl.float32)
    acc_th = tl.zeros(m.shape, tl.float32)

    h = tl.load(h_seq_ptr + (T - 1) * stride + m, mask=mask, other=0.0)
    for tt in range(0, T):
        t = T - 1 - tt
        h_prev_t, gs_t, gvs_t = _backward_loads(h_seq_ptr, gs_ptr, gv_seq_ptr, t, stride, m, mask, HAS_GS, HAS_GV_SEQ)
        v_prev = _state_before(h_prev_t, t, threshold, v_reset, v0_ptr, m, mask, V0_MODE, SAMPLE, INNER, C, RESET)
        # the diagonal step with 1 + lambda = 1: dL/dh (= dL/dx) and the threshold's term
        gh, _gv_unmixed, _d0, d_th, _d2 = _backward_step(
            gs_t, carry + gvs_t, h, v_prev, 1.0, 1.0, 1.0, threshold, 1.0, v_reset, sg_a, sg_b,
            DIAGONAL_BIFURCATION, RESET, False, DETACH_RESET, SURROGATE,
        )  # fmt: skip
        # A^T dL/dh (column j of A^T is row j of A), before this step's stores, which would hold back its loads
        carry = _mix_registers(a_ptr, gh, channel, C)
        _backward_stores(gx_ptr, gh_ptr, v_prev_ptr, t * stride + m, mask, gh, v_prev, NEED_X, STORE_GH, STORE_V_PREV)
        if NEED_TH:
            acc_th = acc_th + d_th
        h = h_prev_t

    if NEED_V0:
        tl.store(gv0_ptr + m, carry, mask=mask)
    if NEED_TH:
        tl.store(gth_ptr + m, acc_th, mask=mask)


@triton.jit
def _mix_registers(m_ptr, v, channel, C: tl.constexpr):
    """``out[i] = sum_j M[i, j] v[j]`` over ``j = 0 .. C - 1`` in this order, each product and sum rounded,
    for ``M`` stored column by column (``M[i, j] = m[j * C + i]``): a column is contiguous, so a thread reads it
    with vector loads, and every thread reads the same addresses. Row j of v is a register of the thread."""
    rows = channel < C
    out = tl.load(m_ptr + channel, mask=rows, other=0.0).to(tl.float32) * _pick(v, channel, 0)[None, :]
    for j in tl.static_range(1, C):
        column = tl.load(m_ptr + j * C + channel, mask=rows, other=0.0).to(tl.float32)
        out = out + column * _pick(v, channel, j)[None, :]
    return out


# --- staged: the state in a scratch buffer, the channels in chunks of ROWS -----------------------------------


@triton.jit
def _forward_staged(
    x_ptr, v0_ptr, at_ptr, th_ptr, spikes_ptr, v_final_ptr, v_seq_ptr, h_seq_ptr, scratch_ptr,
    T, SAMPLE, INNER, v_reset, base, inside, stride,
    C: tl.constexpr, C_PAD: tl.constexpr, ROWS: tl.constexpr, RESET: tl.constexpr,
    V0_MODE: tl.constexpr, TH_MODE: tl.constexpr, STORE_V_SEQ: tl.constexpr, SAVE_H: tl.constexpr,
):  # fmt: skip
    # the scratch is two time steps of x's layout: at step t, row t % 2 holds v_{t-1}; row 0 starts as v_0
    for k in range(0, C_PAD // ROWS):
        channel = k * ROWS + tl.arange(0, ROWS)[:, None]
        m, mask = _chunk(base, inside, channel, C, INNER)
        v0 = tl.where(mask, _load_value(v0_ptr, m, mask, V0_MODE, SAMPLE, INNER, C), 0.0)
        tl.store(scratch_ptr + m, v0, mask=mask)
    tl.debug_barrier()
    for t in range(0, T):
        read = scratch_ptr + (t % 2) * stride  # v_{t-1}
        write = scratch_ptr + ((t + 1) % 2) * stride  # v_t
        for k in range(0, C_PAD // ROWS):
            channel = k * ROWS + tl.arange(0, ROWS)[:, None]
            m, mask = _chunk(base, inside, channel, C, INNER)
            offset = t * stride + m
            x_t = tl.load(x_ptr + offset, mask=mask, other=0.0).to(tl.float32)
            threshold = _load_value(th_ptr, m, mask, TH_MODE, SAMPLE, INNER, C)
            h = _mix_staged(at_ptr, read, channel, base, inside, INNER, C, ROWS) + x_t
            v = _fire_reset_and_store(
                h, threshold, v_reset, spikes_ptr, v_seq_ptr, h_seq_ptr, offset, mask, RESET, STORE_V_SEQ, SAVE_H
            )
            tl.store(write + m, v, mask=mask)
        tl.debug_barrier()  # every v_t written before any is read, every v_{t-1} read before it is overwritten
    for k in range(0, C_PAD // ROWS):
        channel = k * ROWS + tl.arange(0, ROWS)[:, None]
        m, mask = _chunk(base, inside, channel, C, INNER)
        tl.store(v_final_ptr + m, tl.load(scratch_ptr + (T % 2) * stride + m, mask=mask, other=0.0), mask=mask)


@triton.jit
def _backward_staged(
    h_seq_ptr, v0_ptr, a_ptr, th_ptr, gs_ptr, gv_final_ptr, gv_seq_ptr,
    gx_ptr, gh_ptr, v_prev_ptr, gv0_ptr, gth_ptr, scratch_ptr,
    T, SAMPLE, INNER, v_reset, sg_a, sg_b, base, inside, stride,
    C: tl.constexpr, C_PAD: tl.constexpr, ROWS: tl.constexpr, RESET: tl.constexpr, DETACH_RESET: tl.constexpr,
    SURROGATE: tl.constexpr, V0_MODE: tl.constexpr, TH_MODE: tl.constexpr,
    HAS_GS: tl.constexpr, HAS_GV_FINAL: tl.constexpr, HAS_GV_SEQ: tl.constexpr,
    NEED_X: tl.constexpr, STORE_GH: tl.constexpr, STORE_V_PREV: tl.constexpr,
    NEED_V0: tl.constexpr, NEED_TH: tl.constexpr,
):  # fmt: skip
    # the scratch, two time steps of x's layout: row 0 holds dL/dv_t (the carry), row 1 dL/dh_t
    carry_at = scratch_ptr
    grad_h_at = scratch_ptr + stride
    for k in range(0, C_PAD // ROWS):
        channel = k * ROWS + tl.arange(0, ROWS)[:, None]
        m, mask = _chunk(base, inside, channel, C, INNER)
        if HAS_GV_FINAL:
            carry = tl.load(gv_final_ptr + m, mask=mask, other=0.0).to(tl.float32)
        else:
            carry = tl.zeros(m.shape, tl.float32)
        tl.store(carry_at + m, carry, mask=mask)
        if NEED_TH:  # summed over time in place: the output buffer starts at 0
            tl.store(gth_ptr + m, tl.zeros(m.shape, tl.float32), mask=mask)
    tl.debug_barrier()
    for tt in range(0, T):
        t = T - 1 - tt
        # dL/dh_t, chunk by chunk, from dL/dv_t
        for k in range(0, C_PAD // ROWS):
            channel = k * ROWS + tl.arange(0, ROWS)[:, None]
            m, mask = _chunk(base, inside, channel, C, INNER)
            h = tl.load(h_seq_ptr + t * stride + m, mask=mask, other=0.0)
            h_prev_t, gs_t, gvs_t = _backward_loads(
                h_seq_ptr, gs_ptr, gv_seq_ptr, t, stride, m, mask, HAS_GS, HAS_GV_SEQ
            )
            gv = tl.load(carry_at + m, mask=mask, other=0.0) + gvs_t
            threshold = _load_value(th_ptr, m, mask, TH_MODE, SAMPLE, INNER, C)
            v_prev = _state_before(h_prev_t, t, threshold, v_reset, v0_ptr, m, mask, V0_MODE, SAMPLE, INNER, C, RESET)
            gh, _gv_unmixed, _d0, d_th, _d2 = _backward_step(
                gs_t, gv, h, v_prev, 1.0, 1.0, 1.0, threshold, 1.0, v_reset, sg_a, sg_b,
                DIAGONAL_BIFURCATION, RESET, False, DETACH_RESET, SURROGATE,
            )  # fmt: skip
            tl.store(grad_h_at + m, gh, mask=mask)
            _backward_stores(
                gx_ptr, gh_ptr, v_prev_ptr, t * stride + m, mask, gh, v_prev, NEED_X, STORE_GH, STORE_V_PREV
            )
            if NEED_TH:
                tl.store(gth_ptr + m, tl.load(gth_ptr + m, mask=mask, other=0.0) + d_th, mask=mask)
        tl.debug_barrier()  # every dL/dh_t written before the mixing reads it, dL/dv_t read before it is overwritten
        # dL/dv_{t-1} = A^T dL/dh_t, chunk by chunk (M = A^T stored column by column is A, row by row)
        for k in range(0, C_PAD // ROWS):
            channel = k * ROWS + tl.arange(0, ROWS)[:, None]
            m, mask = _chunk(base, inside, channel, C, INNER)
            tl.store(carry_at + m, _mix_staged(a_ptr, grad_h_at, channel, base, inside, INNER, C, ROWS), mask=mask)
        tl.debug_barrier()  # the carry written before the next step reads it, dL/dh_t read before it is overwritten
    if NEED_V0:
        for k in range(0, C_PAD // ROWS):
            channel = k * ROWS + tl.arange(0, ROWS)[:, None]
            m, mask = _chunk(base, inside, channel, C, INNER)
            tl.store(gv0_ptr + m, tl.load(carry_at + m, mask=mask, other=0.0), mask=mask)


@triton.jit
def _mix_staged(m_ptr, src, channel, base, inside, INNER, C: tl.constexpr, ROWS: tl.constexpr):
    """``out[i] = sum_j M[i, j] v[j]`` for the chunk's rows i, over ``j = 0 .. C - 1`` in this order, each product
    and sum rounded, ``M`` stored column by column (as :func:`_mix_registers`) and ``v`` read from the scratch
    ``ROWS`` channels at a time, as a tile of the same shape and layout as the output's. The sum starts from
    ``-0.0``, which adds exactly (``-0.0 + a == a`` for every a, zeros of either sign included), so the first
    sum is the first product, as in the reference."""
    rows = channel < C
    lane = tl.arange(0, ROWS)[:, None]
    out = tl.full((ROWS, base.shape[0]), -0.0, tl.float32)
    for j0 in range(0, C - C % ROWS, ROWS):  # whole chunks of ROWS channels
        v, _ = _chunk(base, inside, j0 + lane, C, INNER)
        v = tl.load(src + v, mask=inside[None, :], other=0.0)
        for jj in tl.static_range(ROWS):
            column = tl.load(m_ptr + (j0 + jj) * C + channel, mask=rows, other=0.0).to(tl.float32)
            out = out + column * _pick(v, lane, jj)[None, :]
    if C % ROWS > 0:  # the last, partial chunk: its channels only
        j0 = C - C % ROWS
        v, v_mask = _chunk(base, inside, j0 + lane, C, INNER)
        v = tl.load(src + v, mask=v_mask, other=0.0)
        for jj in tl.static_range(C % ROWS):
            column = tl.load(m_ptr + (j0 + jj) * C + channel, mask=rows, other=0.0).to(tl.float32)
            out = out + column * _pick(v, lane, jj)[None, :]
    return out


# --- shared -------------------------------------------------------------------------------------------------


@triton.jit
def _positions(P, SAMPLE, INNER, C: tl.constexpr, BLOCK: tl.constexpr, WIDE: tl.constexpr):
    """This program's positions: the neuron index of each one's channel 0 (``base``), which are real
    (``inside``) and the stride of a time step (``P C``); 64-bit offsets when x or the scratch has 2**31
    elements or more (WIDE)."""
    if WIDE:
        p = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        stride = tl.full((), P, tl.int64) * C
    else:
        p = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        stride = P * C
    return (p // INNER) * SAMPLE + p % INNER, p < P, stride


@triton.jit
def _pick(tile, rows, k):
    """Row ``k`` of a ``[ROWS, BLOCK]`` tile, exactly: the other rows add ``-0.0``. Compiled, Triton's reduction
    starts from the first element and folds to a register move when a thread holds the rows. Interpreted,
    ``tl.sum`` is numpy's, which starts from ``+0.0`` and so turns a row of ``-0.0`` into ``+0.0``: there the
    sign of a zero is put back from the row's sign bit (a reduction of this module's own would keep it, but the
    interpreter runs one element at a time)."""
    row = tl.sum(tl.where(rows == k, tile, -0.0), axis=0)
    if INTERPRETED:
        negative = tl.sum(tl.where(rows == k, tile.to(tl.int32, bitcast=True) < 0, False).to(tl.int32), axis=0) > 0
        row = tl.where((row == 0.0) & negative, -0.0, row)
    return row


@triton.jit
def _chunk(base, inside, channel, C: tl.constexpr, INNER):
    """The neurons of a ``[ROWS, BLOCK]`` tile (channels ``channel`` of the program's positions) and its mask."""
    return base[None, :] + channel * INNER, (channel < C) & inside[None, :]


@triton.jit
def _fire_reset_and_store(h, threshold, v_reset, spikes_ptr, v_seq_ptr, h_seq_ptr, offset, mask,
                          RESET: tl.constexpr, STORE_V_SEQ: tl.constexpr, SAVE_H: tl.constexpr):  # fmt: skip
    """The rest of a forward step once ``h_t`` is charged: fire and reset as the diagonal dynamics with
    ``1 + lambda = 1`` (whose reset does not read ``v_{t-1}``), then write the spikes (x's dtype), ``v_t`` to
    ``v_seq`` when asked and ``h_t`` for the backward; returns ``v_t``."""
    s = _fire(h, threshold, 1.0, DIAGONAL_BIFURCATION)
    v = _reset(h, s, 0.0, threshold, 1.0, v_reset, DIAGONAL_BIFURCATION, RESET)
    tl.store(spikes_ptr + offset, s.to(spikes_ptr.dtype.element_ty), mask=mask)
    if STORE_V_SEQ:
        tl.store(v_seq_ptr + offset, v, mask=mask)
    if SAVE_H:
        tl.store(h_seq_ptr + offset, h, mask=mask)
    return v


@triton.jit
def _state_before(h_prev, t, threshold, v_reset, v0_ptr, m, mask, V0_MODE: tl.constexpr, SAMPLE, INNER,
                  C: tl.constexpr, RESET: tl.constexpr):  # fmt: skip
    """``v_{t-1}``: the fire and reset of ``h_{t-1}`` (``v_{t-2}`` is not needed), or at t = 0 the initial state,
    read there rather than kept in registers through the loop."""
    s_prev = _fire(h_prev, threshold, 1.0, DIAGONAL_BIFURCATION)
    v_prev = _reset(h_prev, s_prev, 0.0, threshold, 1.0, v_reset, DIAGONAL_BIFURCATION, RESET)
    return tl.where(t > 0, v_prev, _load_value(v0_ptr, m, _mask_if(mask, t == 0), V0_MODE, SAMPLE, INNER, C))


@triton.jit
def _backward_stores(gx_ptr, gh_ptr, v_prev_ptr, offset, mask, gh, v_prev,
                     NEED_X: tl.constexpr, STORE_GH: tl.constexpr, STORE_V_PREV: tl.constexpr):  # fmt: skip
    """grad_x (x's dtype), and what the gradient of ``A`` reads: dL/dh in fp32 (16-bit x) and ``v_{t-1}``."""
    if NEED_X:
        tl.store(gx_ptr + offset, gh.to(gx_ptr.dtype.element_ty), mask=mask)
    if STORE_GH:
        tl.store(gh_ptr + offset, gh, mask=mask)
    if STORE_V_PREV:
        tl.store(v_prev_ptr + offset, v_prev, mask=mask)


@triton.jit
def _backward_loads(h_seq_ptr, gs_ptr, gv_seq_ptr, t, stride, m, mask, HAS_GS: tl.constexpr, HAS_GV_SEQ: tl.constexpr):
    """What step ``t`` of the backward reads: ``h_{t-1}`` (zeros at t = 0), ``dL/ds_t``, ``dL/dv_t`` from
    ``v_seq`` (zeros when absent)."""
    h_prev = tl.load(h_seq_ptr + (t - 1) * stride + m, mask=_mask_if(mask, t > 0), other=0.0)
    if HAS_GS:
        gs = tl.load(gs_ptr + t * stride + m, mask=mask, other=0.0).to(tl.float32)
    else:
        gs = tl.zeros(m.shape, tl.float32)
    if HAS_GV_SEQ:
        gvs = tl.load(gv_seq_ptr + t * stride + m, mask=mask, other=0.0).to(tl.float32)
    else:
        gvs = tl.zeros(m.shape, tl.float32)
    return h_prev, gs, gvs


#: whether these kernels run under Triton's interpreter (TRITON_INTERPRET when this module was imported), which
#: :func:`_pick` reads as a constexpr
INTERPRETED = tl.constexpr(isinstance(coupled_forward_kernel, InterpretedFunction))
