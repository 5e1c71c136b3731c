"""PyTorch's rounding of a neuron step, per device, written in torch ops that run on the CPU: the reference the
Triton kernels' CUDA mode is checked against without a GPU (imported by name, as ``triton_exactness``).

Each elementwise PyTorch op computes in float32 and rounds its result to the tensor's dtype (float32, or the
16-bit dtype a library keeps its membrane in). Where CUDA and the CPU differ, for the operand types these
dynamics meet (read in PyTorch's ``BinaryDivTrueKernel.cu``, ``Loops.cuh``, ``BinaryMulKernel.cu``, the ufunc
``add`` kernels and ``CompareKernels.cu``; the CPU side measured by ``test_the_cpu_rule_is_the_reference``):

- ``a / python_float``: CUDA multiplies by ``1 / float32(p)``, computed in float32; the CPU divides by
  ``float32(p)``;
- ``a +- python_float``: CUDA adds ``float32(p)``; the CPU first casts ``p`` to a 16-bit ``a``'s dtype;
- a tensor operand (a parameter on the device, 0-d float32): CUDA loads it in the op's common dtype (16-bit for
  a 16-bit ``a``); the CPU treats a 0-d tensor as a scalar that enters in float32 when it is the second operand
  of ``*`` or ``/``, and casts it to the common dtype when it is the first (snnTorch's ``beta * v``);
- comparisons: either device compares with the scalar in the tensor's dtype.

:func:`run` is the forward of :func:`bsnn_lightning.engine.multistep` under one device's rule: with
``device="cpu"`` it must equal the reference backend bit for bit (which runs on the CPU), with ``"cuda"`` it is
what the reference backend computes on a GPU.
"""

from __future__ import annotations

import torch

from bsnn_lightning.engine import (
    SnnTorchLeaky,
    SnnTorchLeakyImmediate,
    SnnTorchSynapticZero,
    SpikingJellyIF,
    SpikingJellyLIF,
    SpikingJellyPLIF,
)
from bsnn_lightning.engine.api import _check_initial_state, _check_params

_LOW = (torch.float16, torch.bfloat16)


class Rule:
    """One device's rounding for one state dtype; values are float32 tensors (16-bit numbers for a 16-bit state)."""

    def __init__(self, device: str, state: torch.dtype):
        self.cuda, self.state, self.low = device == "cuda", state, state in _LOW

    def round(self, t: torch.Tensor) -> torch.Tensor:
        return t.to(self.state).float() if self.low else t

    def sub_scalar(self, a, s: float):
        s32 = torch.tensor(s, dtype=torch.float32)
        return self.round(a - (s32 if self.cuda or not self.low else self.round(s32)))

    def div(self, a, p):
        if isinstance(p, float):
            p32 = torch.tensor(p, dtype=torch.float32)
            return self.round(a * (1.0 / p32)) if self.cuda else self.round(a / p32)
        return self.round(a / self._second(p))

    def mul(self, a, p):
        if isinstance(p, float):
            return self.round(a * torch.tensor(p, dtype=torch.float32))
        return self.round(a * self._second(p))

    def mul_first(self, p, a):
        """``p * a`` for a parameter p written first (a Python float is swapped to second by ``__rmul__``)."""
        if isinstance(p, float):
            return self.mul(a, p)
        return self.round(self.round(p.float()) * a) if self.low else p.float() * a

    def compared(self, p):
        """A threshold as a comparison meets it."""
        p = torch.tensor(p, dtype=torch.float32) if isinstance(p, float) else p.float()
        return self.round(p)

    def _second(self, p):
        p = p.float()
        return self.round(p) if self.low and (self.cuda or p.dim() > 0) else p


def run(device: str, x: torch.Tensor, dynamics, params: dict, v0=None):
    """(spikes, v, v_seq) of ``multistep(x, dynamics, params, v0, return_v_seq=True)`` as PyTorch computes them on
    ``device``; differentiable by autograd (spikes carry the surrogate gradient, each rounding passes the gradient
    through rounded to its dtype: as a library's own 16-bit backward, to rounding)."""
    p = _check_params(params, dynamics, x.shape[2:], x)
    v0 = _check_initial_state(v0, dynamics, x)
    state = dynamics.compute_dtype(x.dtype)
    rule = Rule(device, state)
    v = rule.round(v0.to(state).float()).expand(x.shape[1:])
    step = _STEPS[type(dynamics)]
    spikes, states = [], []
    for t in range(x.shape[0]):
        s, v = step(rule, dynamics, x[t].to(state).float(), v, p)
        spikes.append(s.to(x.dtype))
        states.append(v.to(state))
    return torch.stack(spikes), states[-1], torch.stack(states)


def _spikingjelly(rule: Rule, d, x, v, p):
    rest = 0.0 if d.v_reset is None else float(d.v_reset)
    if isinstance(d, SpikingJellyPLIF):
        decay = lambda a: rule.mul(a, p["q"])  # noqa: E731
    elif isinstance(d, SpikingJellyLIF):
        decay = lambda a: rule.div(a, p["tau"])  # noqa: E731
    if isinstance(d, SpikingJellyIF):
        h = rule.round(v + x)
    elif d.decay_input:
        h = rule.round(v + decay(rule.round(x - rule.sub_scalar(v, rest))))
    else:
        h = rule.round(rule.round(v - decay(rule.sub_scalar(v, rest))) + x)
    threshold = rule.compared(p["threshold"])
    s = (h >= threshold).float() + d.surrogate.gradient_carrier(h - threshold)
    sr = s.detach() if d.detach_reset else s
    if d.v_reset is None:
        v = rule.round(h - rule.mul(sr, p["threshold"]))
    else:
        v = rule.round(rule.mul(sr, float(d.v_reset)) + rule.round((1.0 - sr) * h))
    return s, v


def _snntorch(rule: Rule, d, x, v, p):
    beta = p["beta"]
    beta = min(max(beta, 0.0), 1.0) if isinstance(beta, float) else beta.clamp(0.0, 1.0)
    threshold = rule.compared(p["threshold"])
    r = (v > threshold).float().detach()
    if isinstance(d, SnnTorchSynapticZero):
        m = rule.round(rule.mul_first(beta, v) + x)
        h = rule.round(m - rule.round(m * r))
    elif d.reset_mechanism == "none":
        h = rule.round(rule.mul_first(beta, v) + x)
    elif d.reset_mechanism == "subtract":  # a float32 state only (snnTorch's reset term promotes its membrane)
        h = rule.mul_first(beta, v) + x - r * threshold
    else:
        h = rule.mul_first(beta, (1 - r) * v) + x
    s = rule.mul((h > threshold).float() + d.surrogate.gradient_carrier(h - threshold), p["graded"])
    if isinstance(d, SnnTorchLeakyImmediate):
        do_reset = rule.div(s, p["graded"]) - r
        v = h - do_reset * (threshold if d.reset_mechanism == "subtract" else h)
    else:
        v = h
    return s, v


_STEPS = {
    SpikingJellyLIF: _spikingjelly,
    SpikingJellyPLIF: _spikingjelly,
    SpikingJellyIF: _spikingjelly,
    SnnTorchLeaky: _snntorch,
    SnnTorchSynapticZero: _snntorch,
    SnnTorchLeakyImmediate: _snntorch,
}
