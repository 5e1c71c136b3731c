"""The ``torch`` backend: the reference implementation every other backend is tested against.

A plain time loop over the step functions of :mod:`bsnn_lightning.engine.dynamics`, wrapped in a custom
``torch.autograd.Function`` so that the backward keeps only what it needs: the charged potential ``h_t`` of
every step (one tensor of the input's shape, in the compute dtype), the initial state and the parameters.
Spikes and earlier states are recomputed from ``h`` in the backward, and no autograd graph is built per
step; only a dynamics whose state does not follow from ``h`` alone (``state_from_charge`` False:
:class:`~bsnn_lightning.engine.dynamics.SnnTorchLeakyImmediate`) has its states saved too, and the backward
reads ``v_{t-1}`` from them. State arithmetic runs in the dynamics' ``compute_dtype``: float32, or float64 for
float64 inputs (so ``gradcheck`` can run), or the 16-bit ``state_dtype`` a library keeps its membrane in;
spikes come back in the input's dtype.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from .dynamics import Dynamics


def run_reference(
    x: torch.Tensor,
    v0: torch.Tensor,
    dynamics: Dynamics,
    params: dict[str, "float | torch.Tensor"],
    return_v_seq: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Backend entry point; arguments already validated and broadcast by :func:`engine.multistep`.

    >>> from bsnn_lightning.engine import SpikingJellyLIF
    >>> x = torch.tensor([[[1.5]], [[0.0]], [[2.5]]])  # [T, N, 1]
    >>> spikes, v, v_seq = run_reference(x, torch.zeros(1, 1), SpikingJellyLIF(), {"tau": 2.0, "threshold": 1.0}, True)
    >>> spikes.flatten().tolist(), v_seq.flatten().tolist()  # h = 0.75, 0.375, 1.4375 -> fires, resets to 0
    ([0.0, 0.0, 1.0], [0.75, 0.375, 0.0])
    """
    if torch.compiler.is_compiling() or dynamics.autograd:
        return _run_autograd(x, v0, dynamics, params, return_v_seq)
    names = tuple(params)
    values = [params[n] for n in names]
    # Without a gradient to compute (inference, torch.no_grad()), the charged potentials need not be kept.
    keep = torch.is_grad_enabled() and any(
        isinstance(t, torch.Tensor) and t.requires_grad for t in (x, v0, *values)
    )
    spikes, v_final, v_seq = _ReferenceMultistep.apply(dynamics, names, return_v_seq, keep, x, v0, *values)
    return spikes, v_final, (v_seq if return_v_seq else None)


def _step(dynamics: Dynamics, x_t: torch.Tensor, v: torch.Tensor, p: dict, compute: torch.dtype):
    """One step of the forward: ``(h, s, v)`` from ``x_t`` and the state before it. Every loop over the steps
    (this module's, the ``cpu`` backend's forward and the backward that charges again there) takes this one, so
    they do the same operations in the same order."""
    h = dynamics.charge(x_t.to(compute), v, p)
    s = dynamics.fire(h, p)
    return h, s, dynamics.reset(h, s, p, v)


def _run_autograd(x, v0, dynamics: Dynamics, params: dict, return_v_seq: bool):
    """The same loop differentiated by autograd, spikes carrying the surrogate gradient (``autograd=True``):
    what ``torch.compile`` traces (a plain graph of the step functions, which it can fuse), instead of the
    custom ``autograd.Function`` above. Spikes and states are the same values; gradients agree to rounding."""
    if not dynamics.autograd:
        dynamics = replace(dynamics, autograd=True)
    compute = dynamics.compute_dtype(x.dtype)
    p = _as_compute(params, compute)
    v = v0.to(compute).expand(x.shape[1:])
    spikes, states = [], []
    for t in range(x.shape[0]):
        _, s, v = _step(dynamics, x[t], v, p, compute)
        spikes.append(s.to(x.dtype))
        if return_v_seq:
            states.append(v)
    return torch.stack(spikes), v, (torch.stack(states) if return_v_seq else None)


class _ReferenceMultistep(torch.autograd.Function):
    @staticmethod
    def forward(ctx, dynamics, names, return_v_seq, keep, x, v0, *values):
        compute = dynamics.compute_dtype(x.dtype)
        p = _as_compute(dict(zip(names, values)), compute)
        steps = x.shape[0]
        # dynamics whose state does not follow from h alone keep the states for the backward too
        keep_states = return_v_seq or (keep and not dynamics.state_from_charge)
        v = v0.to(compute).expand(x.shape[1:])

        if steps == 1:  # one step per call (a user's own time loop): views, no copies into buffers
            h, s, v = _step(dynamics, x[0], v, p, compute)
            charged = h.unsqueeze(0) if keep else None
            spikes = s.to(x.dtype).unsqueeze(0)
            history = v.unsqueeze(0) if keep_states else None
        else:
            charged = torch.empty(x.shape, dtype=compute, device=x.device) if keep else None
            spikes = torch.empty_like(x, memory_format=torch.contiguous_format)
            history = torch.empty(x.shape, dtype=compute, device=x.device) if keep_states else None
            for t in range(steps):
                h, s, v = _step(dynamics, x[t], v, p, compute)
                if charged is not None:
                    charged[t] = h
                spikes[t] = s
                if history is not None:
                    history[t] = v
        v_seq = history if return_v_seq else None
        ctx.dynamics, ctx.names, ctx.return_v_seq = dynamics, names, return_v_seq
        ctx.x_dtype, ctx.compute = x.dtype, compute
        ctx.constants = {n: val for n, val in zip(names, values) if not isinstance(val, torch.Tensor)}
        tensors = [val for val in values if isinstance(val, torch.Tensor)]
        ctx.keeps_history = not dynamics.state_from_charge
        if charged is not None:
            saved = (charged, history) if ctx.keeps_history else (charged,)
            ctx.save_for_backward(*saved, v0, *tensors)
        return spikes, v, (v_seq if v_seq is not None else x.new_empty(0))

    @staticmethod
    def backward(ctx, grad_spikes, grad_v_final, grad_v_seq):
        dynamics, names, compute = ctx.dynamics, ctx.names, ctx.compute
        saved = list(ctx.saved_tensors)
        charged = saved.pop(0)
        history = saved.pop(0) if ctx.keeps_history else None
        v0, *tensors = saved
        values, it = {}, iter(tensors)
        for n in names:
            values[n] = ctx.constants[n] if n in ctx.constants else next(it)
        p = _as_compute(values, compute)
        needs = frozenset(n for i, n in enumerate(names) if ctx.needs_input_grad[6 + i])
        state_shape = charged.shape[1:]
        v0_full = v0.to(compute).expand(state_shape)

        steps = charged.shape[0]
        grad_x = torch.empty(charged.shape, dtype=ctx.x_dtype, device=charged.device) if steps > 1 else None
        sums: dict[str, torch.Tensor] = {}
        carry = grad_v_final.to(compute)
        for t in range(steps - 1, -1, -1):
            gv = carry + grad_v_seq[t].to(compute) if ctx.return_v_seq else carry
            gx, carry, grads = dynamics.backward_step(
                grad_spikes[t].to(compute), gv, charged[t], _previous_state(dynamics, charged, history, v0_full, t, p), p, needs
            )
            if grad_x is None:
                grad_x = gx.to(ctx.x_dtype).unsqueeze(0)
            else:
                grad_x[t] = gx
            for n, g in grads.items():
                sums[n] = g if n not in sums else sums[n] + g

        grad_params = []
        for n in names:
            if n in needs:
                grad_params.append(_sum_to_shape(sums[n], values[n].shape).to(values[n].dtype))
            else:
                grad_params.append(None)
        grad_v0 = _sum_to_shape(carry, v0.shape).to(v0.dtype) if ctx.needs_input_grad[5] else None
        return (None, None, None, None, grad_x if ctx.needs_input_grad[4] else None, grad_v0, *grad_params)


def _previous_state(dynamics, charged, history, v0_full, t, p):
    """A thunk for v_{t-1}: the initial state at t = 0, else the saved state of the step before, or its
    reset recomputed from the charged potential."""

    def v_prev():
        if t == 0:
            return v0_full
        if history is not None:
            return history[t - 1]
        h = charged[t - 1]
        return dynamics.reset(h, dynamics.fire(h, p), p)

    return v_prev


_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _as_compute(params: dict, compute: torch.dtype) -> dict:
    """The parameters as the step arithmetic takes them: in the compute dtype, except for a 16-bit state,
    where they stay as given so that PyTorch's own promotion applies exactly as in the library that keeps its
    membrane in 16 bits (a float32 0-d parameter such as SpikingJelly PLIF's ``sigmoid(w)`` then enters each
    product at float32 precision, and only the result is rounded)."""
    if compute in _LOW_PRECISION:
        return params
    return {n: (v.to(compute) if isinstance(v, torch.Tensor) and v.dtype != compute else v) for n, v in params.items()}


def _sum_to_shape(grad: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Reduce a broadcast gradient back to a parameter's shape (sum over the broadcast dimensions)."""
    if grad.shape == shape:
        return grad
    lead = grad.dim() - len(shape)
    dims = list(range(lead)) + [lead + i for i, size in enumerate(shape) if size == 1 and grad.shape[lead + i] != 1]
    return grad.sum(dim=dims, keepdim=True).reshape(shape) if dims else grad.reshape(shape)
