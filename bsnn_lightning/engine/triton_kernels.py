"""The Triton kernels of the ``triton`` backend: one forward and one backward pass over memory, time inside.

Imported only when a Triton call is made (triton is an optional extra); the launch, the custom ops and the
choice of backend live in :mod:`bsnn_lightning.engine.triton_backend`. Every formula that decides a spike or a
state is the one of :mod:`bsnn_lightning.engine.dynamics`, in the same floating-point order (divisions round
to nearest, and the launcher turns off FMA contraction), so that spikes and states equal the reference
backend's bit for bit. Gradients are computed to rounding, not bit for bit: the backward multiplies by
``1 / tau`` (computed once) instead of dividing, and the surrogates use approximate reciprocals.

Layout: x is ``[T, M]`` (``M = N * prod(S)`` neurons, one time step contiguous); each program owns
``BLOCK`` neurons and walks time. A per-layer value is one number, a per-channel one is indexed by
``(m // INNER) % CHANNELS``, a per-neuron one by ``m % SAMPLE``, a full state by ``m``. Offsets are 32-bit
unless x has 2**31 elements or more (``WIDE``).

- **Forward** reads x, writes the spikes (x's dtype) and the final state (the state's dtype); optionally the state of
  every step, and, when T is longer than ``CKPT_EVERY``, the state entering every ``CKPT_EVERY``-th step
  (the only thing saved for the backward besides x itself). ``CHUNK`` steps at a time: the chunk's x is
  read as one ``[CHUNK, BLOCK]`` tile before its first store (a store blocks every later load: the compiler
  cannot move a load above a store to memory that might alias it), then the steps are unrolled. ``VEC``
  neurons per thread (4 when M is a multiple of 16, else 1), in every access alike, so that no value
  changes register layout on the way (which would go through shared memory).
- **Backward** recomputes the charged potentials instead of loading them. For each chunk of ``CHUNK``
  steps (equal to the forward's ``CKPT_EVERY`` when T is longer), last chunk first, it first issues every
  load of the chunk (x, grad_spikes, grad_v_seq, into ``[CHUNK, BLOCK]`` register tiles), then runs the
  forward from the chunk's start state keeping ``h`` in another tile, then walks the chunk backwards
  writing grad_x: all loads of a chunk are in flight together, before its first store. Its loads take no
  mask (lanes past M and rows past T read the last neuron or row, and their results are never stored).
  Rows of a tile are written and read with a compile-time row index, so on a GPU both fold to register
  moves (a read sums the row with ``-0.0`` in the others, and ``a + -0.0 == a`` exactly); one neuron per
  thread keeps a neuron's rows in one thread. The state before a step, ``v_{t-1}``, where a gradient needs
  it, is recomputed from ``h_{t-1}`` (fire and reset); snnTorch's immediate reset (``SNNTORCH_IMMEDIATE``)
  makes ``v_{t-1}`` depend on ``v_{t-2}`` as well, so for it the recompute keeps the state entering each step
  in one more ``[CHUNK, BLOCK]`` tile (``KEEP_STATES``; the other kinds compile without it). Parameter and
  initial-state gradients are summed over time per neuron here, and over the batch by the caller.

Compile-time choices, named by the constants below (their numbers live in :mod:`.triton_codes`):
``KIND`` the dynamics (``LIF``, ``PLIF``, ``IF``, ``PRODUCT_DECAY`` (SpikingJelly 0.0.0.0.14's LIF and
PLIF: ``h = v * decay + x``, the decay factor computed by the launcher), ``SNNTORCH_LEAKY`` (snnTorch's
delayed reset only), ``SNNTORCH_IMMEDIATE`` (snnTorch's ``reset_delay=False``), ``DIAGONAL_BIFURCATION``);
``RESET`` the reset (``RESET_SOFT``, ``RESET_HARD`` for fire-then-reset dynamics; ``RESET_SUBTRACT``,
``RESET_ZERO`` (``Leaky``'s), ``RESET_ZERO_CHARGED`` (``Synaptic``'s, the charged membrane zeroed),
``RESET_NONE`` for snnTorch's delayed reset, which ``SNNTORCH_IMMEDIATE`` also applies at once: by
subtraction for ``RESET_SUBTRACT``, by zeroing for ``RESET_ZERO`` and ``RESET_ZERO_CHARGED``); ``SURROGATE``
the surrogate gradient
(``SG_ATAN``, ``SG_SIGMOID``, ``SG_FAST_SIGMOID``, ``SG_TRIANGLE``, each with two host-computed constants
``sg_a``, ``sg_b``: ``triton_backend._SURROGATES``); ``*_MODE`` a value's layout (``PER_LAYER``,
``PER_CHANNEL``, ``PER_NEURON``, ``FULL_STATE``); ``RAGGED`` whether T is not a multiple of ``CHUNK`` (only
then do the kernels test a step against T); ``STATE`` the state's dtype (``ROUND_FP32``, or a library's 16-bit
membrane, ``ROUND_FP16`` / ``ROUND_BF16``: every op of a step then rounds to it, ``_round``), ``SPIKE_ROUND``
the 16-bit dtype graded spikes are stored in, ``CUDA_RULE`` PyTorch's CUDA rounding rule instead of its CPU
one (a Python-float divisor as a multiply by its float32 reciprocal, tensor operands loaded in a 16-bit op's
dtype), ``P0_SCALAR`` / ``P2_SCALAR`` whether p0 / p2 came as Python floats. A new dynamics adds its ``KIND`` here and its branches in
``_charge``, ``_fire``, ``_reset`` and ``_backward_step`` (and ``_prepare_p0`` / ``_p0_gradient_mask`` if its
p0 is clamped or transformed, ``_load_graded`` if it has a graded spike).
"""

from __future__ import annotations

import triton
import triton.language as tl

from . import triton_codes as codes

# Kernels may read module globals only as constexpr: each code of triton_codes, under the same name.
LIF = tl.constexpr(codes.LIF)
SNNTORCH_LEAKY = tl.constexpr(codes.SNNTORCH_LEAKY)
DIAGONAL_BIFURCATION = tl.constexpr(codes.DIAGONAL_BIFURCATION)
IF = tl.constexpr(codes.IF)
PLIF = tl.constexpr(codes.PLIF)
SNNTORCH_IMMEDIATE = tl.constexpr(codes.SNNTORCH_IMMEDIATE)
PRODUCT_DECAY = tl.constexpr(codes.PRODUCT_DECAY)
RESET_SOFT = tl.constexpr(codes.RESET_SOFT)
RESET_HARD = tl.constexpr(codes.RESET_HARD)
RESET_SUBTRACT = tl.constexpr(codes.RESET_SUBTRACT)
RESET_ZERO = tl.constexpr(codes.RESET_ZERO)
RESET_NONE = tl.constexpr(codes.RESET_NONE)
RESET_ZERO_CHARGED = tl.constexpr(codes.RESET_ZERO_CHARGED)
SG_ATAN = tl.constexpr(codes.SG_ATAN)
SG_SIGMOID = tl.constexpr(codes.SG_SIGMOID)
SG_FAST_SIGMOID = tl.constexpr(codes.SG_FAST_SIGMOID)
SG_TRIANGLE = tl.constexpr(codes.SG_TRIANGLE)
PER_LAYER = tl.constexpr(codes.PER_LAYER)
PER_CHANNEL = tl.constexpr(codes.PER_CHANNEL)
PER_NEURON = tl.constexpr(codes.PER_NEURON)
FULL_STATE = tl.constexpr(codes.FULL_STATE)
ROUND_FP32 = tl.constexpr(codes.ROUND_FP32)
ROUND_FP16 = tl.constexpr(codes.ROUND_FP16)
ROUND_BF16 = tl.constexpr(codes.ROUND_BF16)


@triton.jit
def multistep_forward_kernel(
    x_ptr, v0_ptr, p0_ptr, p1_ptr, p2_ptr,
    spikes_ptr, v_final_ptr, v_seq_ptr, ckpt_ptr,
    T, M, SAMPLE, INNER, CHANNELS,
    v_reset, lo, hi,
    KIND: tl.constexpr, RESET: tl.constexpr, DECAY_INPUT: tl.constexpr,
    V0_MODE: tl.constexpr, P0_MODE: tl.constexpr, P1_MODE: tl.constexpr, P2_MODE: tl.constexpr,
    STORE_V_SEQ: tl.constexpr, SAVE_CKPT: tl.constexpr, CKPT_EVERY: tl.constexpr,
    STATE: tl.constexpr, SPIKE_ROUND: tl.constexpr, CUDA_RULE: tl.constexpr,
    P0_SCALAR: tl.constexpr, P2_SCALAR: tl.constexpr,
    CHUNK: tl.constexpr, BLOCK: tl.constexpr, VEC: tl.constexpr, WIDE: tl.constexpr, RAGGED: tl.constexpr,
):  # fmt: skip
    m, stride = _neurons(M, BLOCK, WIDE)
    mask = m < M
    rows = tl.arange(0, CHUNK)[:, None]
    v0 = _round(_load_value(v0_ptr, m, mask, V0_MODE, SAMPLE, INNER, CHANNELS), STATE)  # v0.to(the state dtype)
    v = tl.where(mask, v0, 0.0)  # a [BLOCK] tensor
    p0 = _prepare_p0(_load_value(p0_ptr, m, mask, P0_MODE, SAMPLE, INNER, CHANNELS), lo, hi, KIND)
    threshold = _round(_load_value(p1_ptr, m, mask, P1_MODE, SAMPLE, INNER, CHANNELS), STATE)
    graded = _round(_load_graded(p2_ptr, m, mask, P2_MODE, SAMPLE, INNER, CHANNELS, KIND), STATE)
    RECIP_P0: tl.constexpr = CUDA_RULE and P0_SCALAR and KIND == LIF  # CUDA: x / float -> x * float32(1 / float)
    RECIP_P2: tl.constexpr = CUDA_RULE and P2_SCALAR and KIND == SNNTORCH_IMMEDIATE
    p0_op = _p0_operand(p0, KIND, STATE, CUDA_RULE, P0_SCALAR, RECIP_P0)
    graded_inv = _reciprocal_if(graded, RECIP_P2)
    rest, reset_to = _reset_values(v_reset, STATE, CUDA_RULE)

    for c in range(0, tl.cdiv(T, CHUNK)):
        t0 = c * CHUNK
        # the chunk's inputs first, as one [CHUNK, BLOCK] tile: every load is issued before the first store
        tile = (t0 + rows) * stride + m[None, :]
        if VEC > 1:  # x's loads take VEC neurons per thread, as the fp32 stores do (one register layout)
            tile = tl.max_contiguous(tile, [1, VEC])
        if RAGGED:
            tile_mask = mask[None, :] & (t0 + rows < T)
        else:
            tile_mask = mask[None, :]
        inputs = tl.load(x_ptr + tile, mask=tile_mask, other=0.0).to(tl.float32)
        if SAVE_CKPT:  # the state entering step t0 = j * CKPT_EVERY (j >= 1), for the backward
            ckpt_row = tl.maximum(t0 // CKPT_EVERY, 1) - 1
            tl.store(ckpt_ptr + ckpt_row * stride + m, v, mask=_mask_if(mask, (t0 > 0) & (t0 % CKPT_EVERY == 0)))
        for k in tl.static_range(CHUNK):
            inside = _inside(t0 + k, T, RAGGED)
            valid = _mask_if(mask, inside)
            offset = (t0 + k) * stride + m
            h = _charge(_row(inputs, rows, k), v, p0_op, threshold, rest, KIND, RESET, DECAY_INPUT, STATE, RECIP_P0)
            s = _fire(h, threshold, graded, KIND)
            v_next = _reset(h, s, v, threshold, graded, reset_to, KIND, RESET, STATE, RECIP_P2, graded_inv)
            tl.store(spikes_ptr + offset, _round(s, SPIKE_ROUND).to(spikes_ptr.dtype.element_ty), mask=valid)
            if STORE_V_SEQ:
                tl.store(v_seq_ptr + offset, v_next, mask=valid)
            v = tl.where(inside, v_next, v)
    tl.store(v_final_ptr + m, v, mask=mask)


@triton.jit
def multistep_backward_kernel(
    x_ptr, v0_ptr, p0_ptr, p1_ptr, p2_ptr, ckpt_ptr,
    gs_ptr, gv_final_ptr, gv_seq_ptr,
    gx_ptr, gv0_ptr, g0_ptr, g1_ptr, g2_ptr,
    T, M, SAMPLE, INNER, CHANNELS,
    v_reset, lo, hi, sg_a, sg_b,
    KIND: tl.constexpr, RESET: tl.constexpr, DECAY_INPUT: tl.constexpr, DETACH_RESET: tl.constexpr,
    SURROGATE: tl.constexpr,
    V0_MODE: tl.constexpr, P0_MODE: tl.constexpr, P1_MODE: tl.constexpr, P2_MODE: tl.constexpr,
    HAS_GS: tl.constexpr, HAS_GV_FINAL: tl.constexpr, HAS_GV_SEQ: tl.constexpr,
    NEED_X: tl.constexpr, NEED_V0: tl.constexpr,
    NEED_P0: tl.constexpr, NEED_P1: tl.constexpr, NEED_P2: tl.constexpr,
    STATE: tl.constexpr, CUDA_RULE: tl.constexpr, P0_SCALAR: tl.constexpr, P2_SCALAR: tl.constexpr,
    CHUNK: tl.constexpr, BLOCK: tl.constexpr, WIDE: tl.constexpr, RAGGED: tl.constexpr,
):  # fmt: skip
    m, stride = _neurons(M, BLOCK, WIDE)
    mask = m < M
    rows = tl.arange(0, CHUNK)[:, None]
    v0 = _round(_load_value(v0_ptr, m, mask, V0_MODE, SAMPLE, INNER, CHANNELS), STATE)
    raw_p0 = _load_value(p0_ptr, m, mask, P0_MODE, SAMPLE, INNER, CHANNELS)
    p0 = _prepare_p0(raw_p0, lo, hi, KIND)
    inv_p0 = tl.div_rn(1.0, p0)  # the gradients multiply by it; only the recompute divides (it decides spikes)
    threshold = _round(_load_value(p1_ptr, m, mask, P1_MODE, SAMPLE, INNER, CHANNELS), STATE)
    graded = _round(_load_graded(p2_ptr, m, mask, P2_MODE, SAMPLE, INNER, CHANNELS, KIND), STATE)
    # the recompute's operands, as the forward's (its spikes are the forward's bit for bit)
    RECIP_P0: tl.constexpr = CUDA_RULE and P0_SCALAR and KIND == LIF
    RECIP_P2: tl.constexpr = CUDA_RULE and P2_SCALAR and KIND == SNNTORCH_IMMEDIATE
    p0_op = _p0_operand(p0, KIND, STATE, CUDA_RULE, P0_SCALAR, RECIP_P0)
    graded_inv = _reciprocal_if(graded, RECIP_P2)
    rest, reset_to = _reset_values(v_reset, STATE, CUDA_RULE)
    p0_mask = _p0_gradient_mask(raw_p0, lo, hi, KIND)
    # v_{t-1} is needed by the tau / beta / eigenvalue gradients and by snnTorch's delayed reset
    NEED_V_PREV: tl.constexpr = (
        NEED_P0 or RESET == RESET_ZERO or RESET == RESET_ZERO_CHARGED or (RESET == RESET_SUBTRACT and NEED_P1)
    )
    # snnTorch's immediate reset makes v_t depend on v_{t-1} besides h_t, so v_{t-1} cannot be recomputed from
    # h_{t-1} alone: the chunk's recompute keeps the state entering each step in one more [CHUNK, BLOCK] tile
    KEEP_STATES: tl.constexpr = NEED_V_PREV and KIND == SNNTORCH_IMMEDIATE

    if HAS_GV_FINAL:
        carry = tl.load(gv_final_ptr + m, mask=mask, other=0.0).to(tl.float32)
    else:
        carry = tl.zeros((BLOCK,), tl.float32)
    acc0 = tl.zeros((BLOCK,), tl.float32)
    acc1 = tl.zeros((BLOCK,), tl.float32)
    acc2 = tl.zeros((BLOCK,), tl.float32)
    # Loads take no mask: lanes past M read neuron M - 1 and rows past T (in the last chunk, RAGGED) row T - 1,
    # whose results are never stored; the stores are masked.
    lanes = tl.minimum(m, M - 1)
    n_chunks = tl.cdiv(T, CHUNK)
    for cc in range(0, n_chunks):
        c = n_chunks - 1 - cc
        t0 = c * CHUNK
        ckpt_row = tl.maximum(c, 1) - 1
        saved = tl.load(ckpt_ptr + ckpt_row * stride + lanes, mask=_mask_if(mask, c > 0), other=0.0).to(tl.float32)
        v_start = tl.where(c == 0, v0, saved)

        # every load of the chunk first, into [CHUNK, BLOCK] register tiles: x and the upstream gradients, issued
        # together before any store (and before the division's slow-path calls), so in flight together
        inputs = tl.zeros((CHUNK, BLOCK), tl.float32)
        grad_spikes = tl.zeros((CHUNK, BLOCK), tl.float32)
        grad_v_seq = tl.zeros((CHUNK, BLOCK), tl.float32)
        for k in tl.static_range(CHUNK):
            at = _last_row_past(t0 + k, T, RAGGED) * stride + lanes
            inputs = tl.where(rows == k, tl.load(x_ptr + at).to(tl.float32)[None, :], inputs)
            if HAS_GS:
                grad_spikes = tl.where(rows == k, tl.load(gs_ptr + at).to(tl.float32)[None, :], grad_spikes)
            if HAS_GV_SEQ:
                grad_v_seq = tl.where(rows == k, tl.load(gv_seq_ptr + at).to(tl.float32)[None, :], grad_v_seq)
        # then forward through the chunk, keeping the charged potentials in another tile
        charged = tl.zeros((CHUNK, BLOCK), tl.float32)
        if KEEP_STATES:
            entering = tl.zeros((CHUNK, BLOCK), tl.float32)  # row 0 (v_start) is never read, nor written
        v = v_start
        for k in tl.static_range(CHUNK):
            if KEEP_STATES:
                if k > 0:
                    entering = tl.where(rows == k, v[None, :], entering)
            h = _charge(_row(inputs, rows, k), v, p0_op, threshold, rest, KIND, RESET, DECAY_INPUT, STATE, RECIP_P0)
            s = _fire(h, threshold, graded, KIND)
            v = _reset(h, s, v, threshold, graded, reset_to, KIND, RESET, STATE, RECIP_P2, graded_inv)
            charged = tl.where(rows == k, h[None, :], charged)

        # backward through the chunk
        h = _row(charged, rows, CHUNK - 1)
        for k in tl.static_range(CHUNK - 1, -1, -1):
            if k > 0:
                h_prev = _row(charged, rows, k - 1)
            if KEEP_STATES:
                if k > 0:
                    v_prev = _row(entering, rows, k)
                else:
                    v_prev = v_start
            elif NEED_V_PREV:  # v_{t-1} from h_{t-1} (the state before it is not read: any value will do)
                if k > 0:
                    s_prev = _fire(h_prev, threshold, graded, KIND)
                    v_prev = _reset(
                        h_prev, s_prev, v_start, threshold, graded, reset_to, KIND, RESET, STATE, RECIP_P2, graded_inv
                    )
                else:
                    v_prev = v_start
            else:
                v_prev = v_start  # unused
            gv = carry
            if HAS_GV_SEQ:
                gv = gv + _row(grad_v_seq, rows, k)
            gx, gv_prev, d0, d1, d2 = _backward_step(
                _row(grad_spikes, rows, k), gv, h, v_prev, p0, inv_p0, p0_mask, threshold, graded, v_reset,
                sg_a, sg_b, KIND, RESET, DECAY_INPUT, DETACH_RESET, SURROGATE,
            )  # fmt: skip
            step = _inside(t0 + k, T, RAGGED)  # steps past T in the last chunk change nothing
            if NEED_X:
                at = _last_row_past(t0 + k, T, RAGGED) * stride + lanes  # as read; masked past T
                tl.store(gx_ptr + at, gx.to(gx_ptr.dtype.element_ty), mask=_mask_if(mask, step))
            carry = tl.where(step, gv_prev, carry)
            if NEED_P0:
                acc0 = tl.where(step, acc0 + d0, acc0)
            if NEED_P1:
                acc1 = tl.where(step, acc1 + d1, acc1)
            if NEED_P2:
                acc2 = tl.where(step, acc2 + d2, acc2)
            if k > 0:
                h = h_prev

    if NEED_V0:
        tl.store(gv0_ptr + m, carry, mask=mask)
    if NEED_P0:
        tl.store(g0_ptr + m, acc0, mask=mask)
    if NEED_P1:
        tl.store(g1_ptr + m, acc1, mask=mask)
    if NEED_P2:
        tl.store(g2_ptr + m, acc2, mask=mask)


# --- one step, forward --------------------------------------------------------------------------------


@triton.jit
def _charge(
    x, v, p0, threshold, rest, KIND: tl.constexpr, RESET: tl.constexpr, DECAY_INPUT: tl.constexpr,
    STATE: tl.constexpr, RECIP_P0: tl.constexpr,
):  # fmt: skip
    """h_t from x_t and v_{t-1}; p0 is tau (its reciprocal under RECIP_P0), clamp(beta, 0, 1),
    1 + clamp(lambda, lo, hi), q or the decay factor by KIND, as :func:`_p0_operand` gives it. With a 16-bit
    STATE every operation rounds its float32 result to that dtype, as PyTorch's eager code does (only the
    kinds ``supports`` lets through: LIF, PLIF, IF, snnTorch's membrane without a reset term)."""
    if KIND == LIF:  # p0 = tau; rest is v_reset, 0 for a soft reset (charges towards 0)
        if DECAY_INPUT:
            h = _round(v + _divide(_round(x - _round(v - rest, STATE), STATE), p0, RECIP_P0, STATE), STATE)
        else:
            h = _round(_round(v - _divide(_round(v - rest, STATE), p0, RECIP_P0, STATE), STATE) + x, STATE)
    elif KIND == PLIF:  # p0 = q = 1 / tau
        if DECAY_INPUT:
            h = _round(v + _round(_round(x - _round(v - rest, STATE), STATE) * p0, STATE), STATE)
        else:
            h = _round(_round(v - _round(_round(v - rest, STATE) * p0, STATE), STATE) + x, STATE)
    elif KIND == IF:
        h = _round(v + x, STATE)
    elif KIND == SNNTORCH_LEAKY or KIND == SNNTORCH_IMMEDIATE:
        # p0 = clamp(beta, 0, 1); the delayed reset of step t is decided from v_{t-1}
        if RESET == RESET_NONE:
            h = _round(_round(p0 * v, STATE) + x, STATE)
        else:
            r = (v > threshold).to(tl.float32)
            if RESET == RESET_SUBTRACT:
                h = p0 * v + x - r * threshold
            elif RESET == RESET_ZERO:
                h = p0 * ((1.0 - r) * v) + x
            else:  # RESET_ZERO_CHARGED: the charged membrane zeroed, input included (m * r and m - m * r exact)
                m = _round(_round(p0 * v, STATE) + x, STATE)
                h = m - m * r
    elif KIND == PRODUCT_DECAY:  # p0 = the decay factor, 1 - 1/tau or 1 - q (computed by the launcher)
        h = v * p0 + x
    else:  # DIAGONAL_BIFURCATION, p0 = 1 + clamp(lambda, lo, hi)
        h = p0 * v + x
    return h


@triton.jit
def _fire(h, threshold, graded, KIND: tl.constexpr):
    if KIND == SNNTORCH_LEAKY or KIND == SNNTORCH_IMMEDIATE:  # strict, as snnTorch; compared directly, as the reference's fire
        s = (h > threshold).to(tl.float32) * graded
    else:
        s = (h >= threshold).to(tl.float32)
    return s


@triton.jit
def _reset(
    h, s, v_prev, threshold, graded, v_reset, KIND: tl.constexpr, RESET: tl.constexpr,
    STATE: tl.constexpr = 0, RECIP_P2: tl.constexpr = False, graded_inv=1.0,
):  # fmt: skip
    """v_t from h_t and s_t; v_{t-1} is read by snnTorch's immediate reset only. s is 0 or 1 here (or the
    graded factor), so ``s * v_reset`` and ``(1 - s) * h`` are exact: a 16-bit state rounds only the soft
    reset's difference (v_reset and threshold come rounded to the state's dtype). The last three (a float32
    state, IEEE division, ``1 / graded``) default to what the coupled kernels, which call it too, need."""
    if KIND == SNNTORCH_LEAKY:  # the delayed reset is in the next charge: u_t = h_t
        v = h
    elif KIND == SNNTORCH_IMMEDIATE:  # at once, minus the delayed part r_t already in the charge
        if RECIP_P2:  # CUDA: s / float -> s * float32(1 / float)
            fired = s * graded_inv
        else:
            fired = tl.div_rn(s, graded)
        do_reset = fired - (v_prev > threshold).to(tl.float32)  # H(h_t - threshold) - r_t
        if RESET == RESET_SUBTRACT:
            v = h - do_reset * threshold
        else:  # RESET_ZERO, RESET_ZERO_CHARGED
            v = h - do_reset * h
    elif RESET == RESET_SOFT:
        v = _round(h - s * threshold, STATE)
    else:  # RESET_HARD
        v = s * v_reset + (1.0 - s) * h
    return v


# --- one step, backward -------------------------------------------------------------------------------


@triton.jit
def _backward_step(
    gs, gv, h, v_prev, p0, inv_p0, p0_mask, threshold, graded, v_reset, sg_a, sg_b,
    KIND: tl.constexpr, RESET: tl.constexpr, DECAY_INPUT: tl.constexpr, DETACH_RESET: tl.constexpr,
    SURROGATE: tl.constexpr,
):  # fmt: skip
    """dL/dx_t, dL/dv_{t-1} and the elementwise gradients of (p0, threshold, graded), as ``backward_step``.

    Divisions by p0 multiply by ``inv_p0 = 1 / p0`` instead (a gradient differs by a rounding at most)."""
    z = h - threshold
    sg = _surrogate_grad(z, sg_a, sg_b, SURROGATE)
    if KIND == SNNTORCH_LEAKY or KIND == SNNTORCH_IMMEDIATE:
        r = (v_prev > threshold).to(tl.float32)
        fired = (z > 0).to(tl.float32)
        if KIND == SNNTORCH_IMMEDIATE:
            if RESET == RESET_SUBTRACT:  # du/dh = 1 - threshold sg
                gh = gs * graded * sg + gv * (1.0 - threshold * sg)
            else:  # RESET_ZERO, RESET_ZERO_CHARGED: u = h (1 - (fired - r)), du/dh = 1 - (fired - r) - h sg
                gh = gs * graded * sg + gv * (1.0 - (fired - r) - h * sg)
        else:
            gh = gs * graded * sg + gv  # du/dh = 1
        gx = gh
        if RESET == RESET_ZERO:
            keep = 1.0 - r
            gv_prev = gh * p0 * keep
            d0 = gh * (keep * v_prev) * p0_mask
        elif RESET == RESET_ZERO_CHARGED:  # h = m (1 - r): dL/dm = dL/dh (1 - r), and dm/dx = 1
            gx = gh * (1.0 - r)
            gv_prev = gx * p0
            d0 = gx * v_prev * p0_mask
        else:
            gv_prev = gh * p0
            d0 = gh * v_prev * p0_mask
        d1 = -gs * graded * sg
        if RESET == RESET_SUBTRACT:
            d1 = d1 - r * gh
        if KIND == SNNTORCH_IMMEDIATE:  # the immediate reset's own dependence on the threshold
            if RESET == RESET_SUBTRACT:  # du/dthreshold = threshold sg - (fired - r)
                d1 = d1 + gv * (threshold * sg - (fired - r))
            else:  # du/dthreshold = h sg
                d1 = d1 + gv * h * sg
        d2 = gs * fired
    else:
        s = (z >= 0).to(tl.float32)
        if RESET == RESET_SOFT:
            if DETACH_RESET:
                gh = gs * sg + gv
                d1 = gv * -s - gs * sg
            else:
                gh = gs * sg + gv * (1.0 - threshold * sg)
                d1 = gv * (threshold * sg - s) - gs * sg
        else:  # RESET_HARD
            if DETACH_RESET:
                gh = gs * sg + gv * (1.0 - s)
                d1 = gv * 0.0 - gs * sg
            else:
                gh = gs * sg + gv * (1.0 - s - (h - v_reset) * sg)
                d1 = gv * ((h - v_reset) * sg) - gs * sg
        d2 = d1  # no graded factor
        if KIND == LIF:  # p0 = tau
            gh_over_tau = gh * inv_p0
            if DECAY_INPUT:
                gx = gh_over_tau
                d0 = -gh * (h - v_prev) * inv_p0  # dh/dtau = -(h - v_{t-1}) / tau
            else:
                gx = gh
                d0 = gh * (v_prev - v_reset) * (inv_p0 * inv_p0)  # dh/dtau = (v_{t-1} - v_reset) / tau^2
            gv_prev = gh - gh_over_tau
        elif KIND == PLIF:  # p0 = q
            gh_q = gh * p0
            if DECAY_INPUT:
                gx = gh_q
                d0 = gh * (h - v_prev) * inv_p0  # dh/dq = x - (v_{t-1} - v_reset) = (h - v_{t-1}) / q
            else:
                gx = gh
                d0 = -gh * (v_prev - v_reset)
            gv_prev = gh - gh_q
        elif KIND == IF:
            gx = gh
            gv_prev = gh
            d0 = d1  # no p0
        elif KIND == PRODUCT_DECAY:  # p0 = the decay factor: dh/dv_{t-1} = p0, dh/dp0 = v_{t-1}
            gx = gh
            gv_prev = gh * p0
            d0 = gh * v_prev
        else:  # DIAGONAL_BIFURCATION, p0 = 1 + clamp(lambda)
            gx = gh
            gv_prev = gh * p0
            d0 = gh * v_prev * p0_mask
    return gx, gv_prev, d0, d1, d2


@triton.jit
def _surrogate_grad(z, sg_a, sg_b, SURROGATE: tl.constexpr):
    """sigma'(z) as :mod:`bsnn_lightning.engine.surrogates` computes it (``c / t`` there is ``(1 / t) * c``);
    a gradient, not a spike: its reciprocals are approximate (a few ulp), not IEEE divisions."""
    if SURROGATE == SG_ATAN:  # sg_a = pi/2 * alpha, sg_b = alpha / 2
        az = sg_a * z
        sg = _reciprocal(1.0 + az * az) * sg_b
    elif SURROGATE == SG_SIGMOID:  # sg_a = alpha * log2(e), sg_b = alpha: exp(-alpha z) = 2^(-sg_a z)
        sig = _reciprocal(1.0 + tl.math.exp2(-(sg_a * z)))
        sg = sg_b * sig * (1.0 - sig)
    elif SURROGATE == SG_FAST_SIGMOID:  # sg_a = alpha
        d = sg_a * tl.abs(z) + 1.0
        sg = _reciprocal(d * d)
    else:  # SG_TRIANGLE: sg_a = alpha^2, sg_b = alpha
        sg = tl.maximum(sg_b - sg_a * tl.abs(z), 0.0, propagate_nan=tl.PropagateNan.ALL)
    return sg


# --- rounding: the device's rule, a 16-bit state ------------------------------------------------------


@triton.jit
def _divide(a, p, RECIP: tl.constexpr, STATE: tl.constexpr):
    """``a / p`` rounded to the state's dtype: an IEEE division, or (RECIP, PyTorch's CUDA rule for a Python-float
    divisor) a multiply by the float32 reciprocal that p then holds."""
    if RECIP:
        q = a * p
    else:
        q = tl.div_rn(a, p)
    return _round(q, STATE)


@triton.jit
def _p0_operand(p0, KIND: tl.constexpr, STATE: tl.constexpr, CUDA_RULE: tl.constexpr, P0_SCALAR: tl.constexpr,
                RECIP: tl.constexpr):  # fmt: skip
    """p0 as the charge's operation takes it. Under PyTorch's CUDA rule: the float32 reciprocal of a
    Python-float tau (RECIP), and for a tensor p0 with a 16-bit state, p0 in that dtype (the CUDA kernel loads
    every tensor operand in the common dtype, which a 0-d float32 parameter does not promote). On the CPU a
    0-d tensor is a scalar that enters a product or quotient in float32 when it is the second operand (tau,
    q), but is first cast to the common dtype when it is the first (snnTorch's ``beta * v``). A Python float
    (a scalar on either device, always the second operand) enters in float32."""
    if RECIP:
        p0 = tl.div_rn(1.0, p0)
    elif not P0_SCALAR and STATE != ROUND_FP32:
        if KIND == SNNTORCH_LEAKY or (CUDA_RULE and (KIND == LIF or KIND == PLIF)):
            p0 = _round(p0, STATE)
    return p0


@triton.jit
def _reciprocal_if(value, RECIP: tl.constexpr):
    if RECIP:
        value = tl.div_rn(1.0, value)
    return value


@triton.jit
def _reset_values(v_reset, STATE: tl.constexpr, CUDA_RULE: tl.constexpr):
    """v_reset as the charge subtracts it (``v - v_reset``: on the CPU a Python-float operand of an addition is
    first cast to the tensor's 16-bit dtype, on CUDA it enters in float32) and as the hard reset sets it
    (``s * v_reset`` rounded: the 16-bit v_reset on either device)."""
    v_reset = tl.cast(v_reset, tl.float32)  # a float32 scalar (under the interpreter: from a Python float)
    reset_to = _round(v_reset, STATE)
    if CUDA_RULE:
        rest = v_reset
    else:
        rest = reset_to
    return rest, reset_to


@triton.jit
def _round(x, ROUND: tl.constexpr):
    """x (float32) rounded to nearest-even in ROUND's 16-bit dtype, kept in float32 (ROUND_FP32: x as is).
    bf16 is written as bit arithmetic, not a conversion, so that Triton's interpreter (whose float32 -> bf16
    conversion truncates) computes what a GPU computes; NaN stays NaN, overflow gives inf. fp16 converts:
    both round to nearest-even there (``tests/test_triton_rounding.py`` checks either against torch)."""
    if ROUND == ROUND_BF16:
        bits = x.to(tl.uint32, bitcast=True)
        rounded = (((bits + (0x7FFF + ((bits >> 16) & 1))) >> 16) << 16).to(tl.float32, bitcast=True)
        x = tl.where(x != x, x, rounded)
    elif ROUND == ROUND_FP16:
        # a conversion: round-to-nearest-even on a GPU (cvt.rn) and under the interpreter (numpy) alike, in two
        # instructions (bit arithmetic for fp16's subnormals and overflow would take some 15, and spill)
        x = x.to(tl.float16).to(tl.float32)
    return x


# --- parameters ---------------------------------------------------------------------------------------


@triton.jit
def _load_value(ptr, m, mask, MODE: tl.constexpr, SAMPLE, INNER, CHANNELS):
    """A per-layer, per-channel, per-neuron or full-state value (by MODE) for neurons m, in fp32."""
    if MODE == PER_LAYER:
        value = tl.load(ptr)
    else:
        if MODE == PER_CHANNEL:
            index = (m // INNER) % CHANNELS
        elif MODE == PER_NEURON:
            index = m % SAMPLE
        else:  # FULL_STATE
            index = m
        value = tl.load(ptr + index, mask=mask, other=1.0)  # 1.0: no division by 0 in masked-off lanes
    return value.to(tl.float32)


@triton.jit
def _load_graded(ptr, m, mask, MODE: tl.constexpr, SAMPLE, INNER, CHANNELS, KIND: tl.constexpr):
    if KIND == SNNTORCH_LEAKY or KIND == SNNTORCH_IMMEDIATE:
        graded = _load_value(ptr, m, mask, MODE, SAMPLE, INNER, CHANNELS)
    else:
        graded = 1.0
    return graded


@triton.jit
def _prepare_p0(p0, lo, hi, KIND: tl.constexpr):
    """tau, q or the decay factor as is; beta clamped to [0, 1]; 1 + the eigenvalue clamped to [lo, hi]."""
    if KIND == SNNTORCH_LEAKY or KIND == SNNTORCH_IMMEDIATE:
        p0 = tl.minimum(tl.maximum(p0, 0.0), 1.0)
    elif KIND == DIAGONAL_BIFURCATION:
        p0 = 1.0 + tl.minimum(tl.maximum(p0, lo), hi)
    return p0


@triton.jit
def _p0_gradient_mask(p0, lo, hi, KIND: tl.constexpr):
    """1 where the clamp of beta / the eigenvalue passes the gradient (closed interval, as torch.clamp)."""
    if KIND == SNNTORCH_LEAKY or KIND == SNNTORCH_IMMEDIATE:
        passes = ((p0 >= 0.0) & (p0 <= 1.0)).to(tl.float32)
    elif KIND == DIAGONAL_BIFURCATION:
        passes = ((p0 >= lo) & (p0 <= hi)).to(tl.float32)
    else:
        passes = 1.0
    return passes


@triton.jit
def _neurons(M, BLOCK: tl.constexpr, WIDE: tl.constexpr):
    """This program's neurons and the stride of a time step: 32-bit offsets, unless x has 2**31 elements or
    more (WIDE: 64-bit, as every offset (t * M + m) then needs)."""
    if WIDE:
        m = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        stride = tl.full((), M, tl.int64)
    else:
        m = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        stride = M
    return m, stride


@triton.jit
def _inside(t, T, RAGGED: tl.constexpr):
    """Whether step t exists (t < T); a constant True unless T is not a multiple of the chunk (RAGGED)."""
    if RAGGED:
        inside = t < T
    else:
        inside = True
    return inside


@triton.jit
def _last_row_past(t, T, RAGGED: tl.constexpr):
    """Row t, or row T - 1 for a step past T (only a RAGGED last chunk has those)."""
    if RAGGED:
        t = tl.minimum(t, T - 1)
    return t


@triton.jit
def _mask_if(mask, condition):
    """``mask & condition`` for a scalar condition: one select of a uniform predicate once compiled (written
    so, it stays a boolean in the interpreter)."""
    return tl.where(condition, mask, False)


@triton.jit
def _reciprocal(x):
    """1 / x for x >= 1, for surrogate gradients: the square of the GPU's approximate 1 / sqrt(x), then one
    Newton step in two fused multiply-adds: within about an ulp, in 5 instructions (an IEEE division is some
    10 with a branch, Triton's approximate division 5 and 2 ulp). x is first capped at 2**126 (NaN kept), so
    that an infinite x (a saturated exponential) gives 2**-126 rather than the NaN of inf * 0."""
    x = tl.minimum(x, 8.507059173023462e37, propagate_nan=tl.PropagateNan.ALL)
    r = tl.math.rsqrt(x)
    r = r * r
    return tl.fma(r, tl.fma(-x, r, 1.0), r)


@triton.jit
def _row(tile, rows, k: tl.constexpr):
    """Row k of a [CHUNK, BLOCK] register tile (the other rows add -0.0: exact, and free once compiled)."""
    return tl.sum(tl.where(rows == k, tile, -0.0), axis=0)
