"""``multistep``: the one function that runs a layer of spiking neurons over a whole sequence."""

from __future__ import annotations

import contextlib
import math
from typing import Mapping, NamedTuple

import torch

from . import checks
from .backends import resolve_backend
from .dynamics import Dynamics
from .torch_modes import ops_observed


class MultistepOutput(NamedTuple):
    """What :func:`multistep` returns.

    >>> from bsnn_lightning.engine import SpikingJellyLIF
    >>> out = multistep(torch.full((3, 2, 4), 0.6), SpikingJellyLIF(), {"tau": 2.0, "threshold": 1.0}, backend="torch")
    >>> tuple(out.spikes.shape), tuple(out.v.shape), out.v_seq is None
    ((3, 2, 4), (2, 4), True)
    """

    spikes: torch.Tensor  #: [T, N, ...], the input's dtype
    v: torch.Tensor  #: [N, ...], the state after the last step
    v_seq: torch.Tensor | None  #: [T, N, ...], the state after every step, when asked for


def multistep(
    x: torch.Tensor,
    dynamics: Dynamics,
    params: Mapping[str, "float | torch.Tensor"],
    v0: "torch.Tensor | float | None" = None,
    *,
    backend: str = "auto",
    return_v_seq: bool = False,
    check_finite: "str | bool" = "auto",
) -> MultistepOutput:
    """Run ``dynamics`` over ``x[T, N, ...]`` from the initial state ``v0``; differentiable in x, v0, params.

    Shapes, with ``S = x.shape[2:]`` the shape of one sample and ``C = S[0]`` its channels:

    - ``v0``: ``[N, *S]`` (a full state, e.g. carried over from the previous chunk), ``S`` (per neuron,
      shared over the batch, e.g. a learnable initial membrane potential), ``[C]`` (per channel), ``[]``
      (per layer), a float, or ``None`` for the dynamics' resting state;
    - each parameter (``dynamics.param_names``): a float, or a tensor of shape ``[]``, ``[C]`` or ``S``;
      a matrix parameter (``dynamics.matrix_params``: :class:`CoupledBifurcation`'s ``coupling``) is ``[C, C]``.

    Gradients flow to every tensor that requires them, reduced over the batch (and over space for
    per-channel values). ``check_finite`` checks that the parameters and the final state are free of NaN and
    Inf (a NaN or Inf in x or v0 always reaches the final state: every step multiplies or adds the state, and
    ``0 * inf`` is NaN; so does an overflow of the dynamics): ``"sync"`` raises at once and names the culprit,
    ``"defer"`` keeps the check on the device until :func:`~bsnn_lightning.engine.checks.raise_deferred`
    (no host synchronisation), ``"off"`` skips it, ``"auto"`` (default) is ``"sync"`` on the CPU and
    ``"defer"`` elsewhere (see :mod:`bsnn_lightning.engine.checks`). While ``torch.compile`` traces, no
    check runs (it would break the graph).

    >>> from bsnn_lightning.engine import SpikingJellyLIF
    >>> out = multistep(torch.tensor([[[1.5]], [[0.0]], [[2.5]]]), SpikingJellyLIF(), {"tau": 2.0, "threshold": 1.0})
    >>> out.spikes.flatten().tolist(), out.v.flatten().tolist()
    ([0.0, 0.0, 1.0], [0.0])
    """
    _check_input(x)
    sample_shape = x.shape[2:]
    params = _check_params(params, dynamics, sample_shape, x)
    v0 = _check_initial_state(v0, dynamics, x)
    # a negative view (torch._neg_view) keeps its negation as a bit; the cpu and triton backends read memory,
    # and dynamo's own graph for one read it un-negated (torch 2.13): every backend gets the values applied
    # (while torch.compile traces, the graph's inputs are functional tensors with no such bit)
    if not torch.compiler.is_compiling():
        x, v0 = _resolved(x), _resolved(v0)
        params = {name: _resolved(value) for name, value in params.items()}
    chosen = resolve_backend(backend, x, dynamics)
    if chosen.state_sum:  # and the final state's sum, which its loop computed in passing
        spikes, v, v_seq, v_sum = chosen.run(x, v0, dynamics, params, return_v_seq)
    else:
        (spikes, v, v_seq), v_sum = chosen.run(x, v0, dynamics, params, return_v_seq), None
    mode = checks.resolve(check_finite, x.device)
    if mode != "off" and not torch.compiler.is_compiling():
        _check_finite(mode, x, v0, v, dynamics, params, v_sum)
    return MultistepOutput(spikes, v, v_seq)


#: tensor types without a __torch_function__ of their own
_PLAIN = (torch.Tensor, torch.nn.Parameter)


def _check_finite(mode: str, x, v0, v, dynamics: Dynamics, params: dict, v_sum: "torch.Tensor | None") -> None:
    """Raise (``"sync"``) or record (``"defer"``) a NaN or Inf in the final state ``v`` or a parameter; ``v_sum``:
    ``v``'s float32 sum where the backend computed it (the synchronous check then reads that, not ``v``)."""
    tensors = [v] + [value for value in params.values() if isinstance(value, torch.Tensor)]
    # with nothing to hide the check from (no mode, no subclass's __torch_function__), it runs as it is: cheaper
    plain = mode == "sync" and not ops_observed() and all(type(t) in _PLAIN for t in tensors)
    with contextlib.nullcontext() if plain else checks.unobserved():
        if mode == "defer":
            checks.defer(f"the state or parameters of {type(dynamics).__name__} (engine)", checks.non_finite(*tensors))
        elif not _all_finite(tensors, v_sum):
            raise ValueError(_diagnose_non_finite(x, v0, params))


def _resolved(value):
    """``value`` with a negative view's bit applied (``resolve_neg``, differentiable), else ``value`` itself."""
    return value.resolve_neg() if isinstance(value, torch.Tensor) and value.is_neg() else value


def _check_input(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected x to be a torch.Tensor of shape [T, N, ...], got {type(x).__name__}")
    if x.dim() < 2:
        raise ValueError(
            f"expected x of shape [T, N, ...] (time first, then batch), got {_fmt(x.shape)}; "
            "a single step [N, ...] needs a leading time dimension: x.unsqueeze(0)"
        )
    if not x.is_floating_point():
        raise TypeError(f"expected x of a floating dtype, got {x.dtype}")
    if x.shape[0] == 0:
        raise ValueError(f"expected at least one time step, got x of shape {_fmt(x.shape)} (T = 0)")


def _check_params(params, dynamics, sample_shape, x) -> dict:
    if params is None:
        params = {}
    missing = [n for n in dynamics.param_names if n not in params]
    extra = [n for n in params if n not in dynamics.param_names]
    if missing or extra:
        raise ValueError(
            f"{type(dynamics).__name__} expects parameters {list(dynamics.param_names)}, got {sorted(params)}"
        )
    out = {}
    for name in dynamics.param_names:
        value = params[name]
        if name in dynamics.matrix_params:
            out[name] = _check_matrix(name, value, sample_shape)
        else:
            out[name] = _broadcastable(name, value, sample_shape, x, allow_full=False)
    return out


def _check_initial_state(v0, dynamics, x):
    if v0 is None:
        v0 = dynamics.resting_state()
    if isinstance(v0, (int, float)):
        return _scalar_state(float(v0), dynamics.compute_dtype(x.dtype), x.device)
    return _broadcastable("initial state v0", v0, x.shape[2:], x, allow_full=True)


#: 0-d initial states made from Python numbers, by (exact value, dtype, device); backends read v0, never write it
_SCALAR_STATES: dict[tuple, torch.Tensor] = {}


def _scalar_state(value: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``torch.full((), value, dtype=dtype, device=device)``, made once per CPU value and dtype (a layer calls
    with the same resting state at every step; making it was a tenth of a small layer's fixed cost on the CPU),
    unless an op counter watches (it counts the tensor made at every call, whatever came before).

    >>> a = _scalar_state(-0.0, torch.float32, torch.device("cpu"))
    >>> a is _scalar_state(-0.0, torch.float32, torch.device("cpu")), a is _scalar_state(0.0, torch.float32, torch.device("cpu"))
    (True, False)
    """
    if device.type != "cpu" or torch.compiler.is_compiling() or ops_observed():
        # a traced graph makes its own, and an op counter counts the tensor made at every call, as before
        return torch.full((), value, dtype=dtype, device=device)
    key = (value.hex(), dtype)
    state = _SCALAR_STATES.get(key)
    if state is None:
        if len(_SCALAR_STATES) >= 1024:  # a sweep over many values starts afresh
            _SCALAR_STATES.clear()
        state = _SCALAR_STATES.setdefault(key, torch.full((), value, dtype=dtype, device=device))
    return state


def _broadcastable(name, value, sample_shape, x, allow_full):
    """Validate a per-layer/channel/neuron (or full-state) tensor and view it to broadcast on [N, *S]."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ValueError(f"expected a finite {name}, got {value}")
        return float(value)
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"expected {name} to be a float or a tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(f"expected {name} of a floating dtype, got {value.dtype}")
    if value.device != x.device:
        raise ValueError(f"expected {name} on {x.device} like x, got {value.device}")
    shape = tuple(value.shape)
    sample = tuple(sample_shape)
    if allow_full and shape == tuple(x.shape[1:]):
        return value
    if shape in ((), (1,)):
        return value.reshape(())
    if shape == sample:
        return value
    if sample and shape == (sample[0],):
        return value.reshape(sample[0], *([1] * (len(sample) - 1)))
    options = []
    if allow_full:
        options.append(f"{_fmt(x.shape[1:])} (full state)")
    options.append(f"{_fmt(sample)} (per neuron)")
    if sample:
        options.append(f"[{sample[0]}] (per channel)")
    options.append("[] (per layer)")
    raise ValueError(
        f"expected {name} of shape {', '.join(options)} for x of shape {_fmt(x.shape)}, got {_fmt(shape)}"
    )


def _check_matrix(name, value, sample_shape):
    if not isinstance(value, torch.Tensor) or not sample_shape:
        raise ValueError(f"expected {name} to be a [C, C] tensor for x of shape [T, N, C, ...], got {value!r}")
    channels = sample_shape[0]
    if tuple(value.shape) != (channels, channels):
        raise ValueError(f"expected {name} of shape [{channels}, {channels}], got {_fmt(value.shape)}")
    return value


def _all_finite(tensors: list[torch.Tensor], first_sum: "torch.Tensor | None" = None) -> bool:
    """True if every tensor is free of NaN and Inf (reads the answer back to the host).

    Fast path: one sum over everything (a NaN or Inf anywhere makes it non-finite, and it is one reduction
    instead of a boolean tensor per operand; ``first_sum``, where given, is the first tensor's float32 sum,
    already computed); only if that sum is not finite (which finite values can also cause, by overflowing it)
    are the elements checked one by one.

    >>> v = torch.tensor([3e38, 3e38])  # finite, but its sum overflows: the elements decide
    >>> _all_finite([v]), _all_finite([v], v.sum()), _all_finite([torch.tensor([1.0, float("nan")])])
    (True, True, False)
    """
    total = tensors[0].detach().sum(dtype=torch.float32) if first_sum is None else first_sum
    for value in tensors[1:]:
        total = total + value.detach().sum(dtype=torch.float32)
    if math.isfinite(total.item()):  # one host read, without a tensor for the answer
        return True
    return all(bool(torch.isfinite(t).all()) for t in tensors)


def _diagnose_non_finite(x, v0, params) -> str:
    culprits = []
    if not bool(torch.isfinite(x).all()):
        t = int((~torch.isfinite(x)).flatten(1).any(1).nonzero()[0])
        culprits.append(f"the input x has NaN or Inf (first at time step {t})")
    if isinstance(v0, torch.Tensor) and not bool(torch.isfinite(v0).all()):
        culprits.append("the initial state v0 has NaN or Inf")
    for name, value in params.items():
        if isinstance(value, torch.Tensor) and not bool(torch.isfinite(value).all()):
            culprits.append(f"the parameter {name!r} has NaN or Inf")
    if not culprits:
        culprits.append("the dynamics overflowed from finite inputs (check the eigenvalues / decay and the input scale)")
    return "non-finite neuron state: " + "; ".join(culprits)


def _fmt(shape) -> str:
    return "[" + ", ".join(str(int(s)) for s in shape) + "]"
