"""Gradients of the reference backend.

Two independent checks:
- ``torch.autograd.gradcheck`` in float64 on *relaxed* dynamics, whose forward replaces the Heaviside step by
  the surrogate's primitive, so the hand-written backward must be the exact derivative of a smooth function:
  for x, v0 (hence the IMP), tau, beta, threshold, graded factor, eigenvalues and the coupling matrix.
- against plain autograd through the same step functions with a surrogate-gradient spike, on the real
  (non-relaxed) dynamics, which covers ``detach_reset`` (a deliberate gradient cut that finite differences
  cannot see).
"""

import dataclasses

import pytest
import torch

from bsnn_lightning import BifurcationNeuron
from bsnn_lightning.engine import (
    CoupledBifurcation,
    DiagonalBifurcation,
    SnnTorchLeaky,
    SnnTorchLeakyImmediate,
    SnnTorchSynapticZero,
    SnnTorchSynapticZeroImmediate,
    SpikingJellyLIF,
    multistep,
)

D = torch.float64
T, N, C, H = 4, 3, 3, 2


def _leaf(t):
    return t.detach().clone().requires_grad_()


def _gradcheck(dynamics, params, v0):
    torch.manual_seed(0)
    x = _leaf(torch.randn(T, N, C, H, dtype=D) * 0.7 + 0.5)
    names = list(params)

    def f(x, v0, *values):
        out = multistep(x, dynamics, dict(zip(names, values)), v0, return_v_seq=True)
        return out.spikes, out.v, out.v_seq

    assert torch.autograd.gradcheck(f, (x, _leaf(v0), *[_leaf(p) for p in params.values()]), atol=1e-7)


SJ_CASES = [
    dict(),
    dict(v_reset=None),
    dict(decay_input=False),
    dict(decay_input=False, v_reset=0.25),
]


@pytest.mark.parametrize("surrogate", ["atan", "sigmoid", "fast_sigmoid:4", "triangle:0.5"])
@pytest.mark.parametrize("case", SJ_CASES, ids=str)
def test_gradcheck_spikingjelly_lif(surrogate, case):
    dyn = SpikingJellyLIF(surrogate=surrogate, relaxed=True, **case)
    params = {"tau": torch.tensor(2.0, dtype=D), "threshold": torch.full((C,), 1.0, dtype=D)}
    _gradcheck(dyn, params, torch.rand(C, H, dtype=D) * 0.5)  # per-neuron v0, as an IMP


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
def test_gradcheck_snntorch_leaky(reset):
    dyn = SnnTorchLeaky(reset_mechanism=reset, relaxed=True)
    params = {
        "beta": torch.tensor([0.7, 0.8, 0.95], dtype=D),
        "threshold": torch.tensor(1.0, dtype=D),
        "graded": torch.tensor(1.5, dtype=D),
    }
    _gradcheck(dyn, params, torch.rand(N, C, H, dtype=D) * 0.5)  # full state, as snnTorch's mem


@pytest.mark.slow
@pytest.mark.parametrize("return_v_seq", [False, True], ids=["states-kept-for-backward", "states-returned"])
@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_gradcheck_snntorch_leaky_immediate_reads_the_saved_states(reset, return_v_seq):
    """SnnTorchLeakyImmediate's state needs u_{t-1} besides h_t, so the reference backend saves every state
    (state_from_charge is False) and its backward reads u_{t-1} from them instead of recomputing it from h.
    Checked without return_v_seq too, where the states are kept for the backward alone, and over T = 6
    steps with inputs large enough that the delayed and the immediate reset both happen (r_t = 1 for some t:
    a state above the threshold, left by the subtract reset or given as v0), so a wrong u_{t-1} changes the
    gradient."""
    torch.manual_seed(0)
    x = _leaf(torch.randn(6, N, C, H, dtype=D) * 1.2 + 0.9)
    dyn = SnnTorchLeakyImmediate(reset_mechanism=reset, relaxed=True)
    params = {
        "beta": torch.tensor([0.7, 0.8, 0.95], dtype=D),
        "threshold": torch.tensor(1.0, dtype=D),
        "graded": torch.tensor(1.5, dtype=D),
    }
    v0 = torch.rand(N, C, H, dtype=D) * 1.5  # some above the threshold: r_1 = 1 there
    names = list(params)

    def f(x, v0, *values):
        out = multistep(x, dyn, dict(zip(names, values)), v0, return_v_seq=return_v_seq, backend="torch")
        return (out.spikes, out.v, out.v_seq) if return_v_seq else (out.spikes, out.v)

    with torch.no_grad():  # the case exercises the delayed reset: some state is above the threshold
        v_seq = multistep(x, SnnTorchLeakyImmediate(reset_mechanism=reset), params, v0, return_v_seq=True).v_seq
        assert (v_seq[:-1] > 1.0).any() or reset == "zero"  # zero's immediate reset leaves u_t <= threshold
        assert (v0 > 1.0).any() and (v_seq[:-1] != 0).any()
    assert torch.autograd.gradcheck(f, (x, _leaf(v0), *[_leaf(p) for p in params.values()]), atol=1e-7)


@pytest.mark.slow
@pytest.mark.parametrize("return_v_seq", [False, True], ids=["v-final", "v-seq"])
@pytest.mark.parametrize("kind", [SnnTorchSynapticZero, SnnTorchSynapticZeroImmediate], ids=lambda k: k.__name__)
def test_gradcheck_snntorch_synaptic_zero(kind, return_v_seq):
    """snnTorch Synaptic's reset to zero of the charged membrane, h = m - m r with m = beta u + x: its input
    gradient is (1 - r), not Leaky's 1. The inputs are large enough, and v0 partly above the threshold, that
    r_t = 1 happens (checked), so a backward that forgot (1 - r) in dL/dx, dL/du or dL/dbeta fails here; one
    beta above 1 checks the clamp's gradient mask."""
    torch.manual_seed(0)
    x = _leaf(torch.randn(6, N, C, H, dtype=D) * 1.2 + 0.9)
    dyn = kind(relaxed=True)
    params = {
        "beta": torch.tensor([0.7, 0.8, 1.2], dtype=D),  # 1.2: clamped to 1, no gradient to beta there
        "threshold": torch.tensor(1.0, dtype=D),
        "graded": torch.tensor(1.5, dtype=D),
    }
    v0 = torch.rand(N, C, H, dtype=D) * 1.5  # some above the threshold: r_1 = 1 there
    names = list(params)

    def f(x, v0, *values):
        out = multistep(x, dyn, dict(zip(names, values)), v0, return_v_seq=return_v_seq, backend="torch")
        return (out.spikes, out.v, out.v_seq) if return_v_seq else (out.spikes, out.v)

    with torch.no_grad():  # the delayed reset fires somewhere after t = 1 as well (for the delayed class)
        v_seq = multistep(x, kind(), params, v0, return_v_seq=True).v_seq
        assert (v0 > 1.0).any()
        assert kind is SnnTorchSynapticZeroImmediate or (v_seq[:-1] > 1.0).any()
    assert torch.autograd.gradcheck(f, (x, _leaf(v0), *[_leaf(p) for p in params.values()]), atol=1e-7)


@pytest.mark.parametrize("v_reset", [None, 0.0])
@pytest.mark.parametrize("granularity", ["channel", "neuron"])
def test_gradcheck_bifurcation_diagonal(v_reset, granularity):
    eig = torch.tensor([-0.9, -0.3, 0.1], dtype=D)
    if granularity == "neuron":
        eig = torch.rand(C, H, dtype=D) - 0.7
    params = {"eigenvalues": eig, "threshold": torch.tensor(1.0, dtype=D)}
    _gradcheck(DiagonalBifurcation(v_reset=v_reset, relaxed=True), params, torch.rand(C, dtype=D) * 0.5)  # per-channel v0


def test_gradcheck_bifurcation_coupled_matrix():
    q, _ = torch.linalg.qr(torch.randn(C, C, dtype=D))
    coupling = q @ torch.diag(torch.tensor([0.2, 0.7, 1.1], dtype=D)) @ q.T
    params = {"coupling": coupling, "threshold": torch.tensor(1.0, dtype=D)}
    _gradcheck(CoupledBifurcation(relaxed=True), params, torch.tensor(0.3, dtype=D))  # per-layer v0


class _RelaxedBifurcationNeuron(BifurcationNeuron):
    def bsnn_engine(self, sample_shape, dtype=torch.float32):
        dynamics, params = super().bsnn_engine(sample_shape, dtype)
        return dataclasses.replace(dynamics, relaxed=True), params


def test_gradcheck_coupled_eigenvalues_and_basis_through_the_neuron():
    torch.manual_seed(0)
    neuron = _RelaxedBifurcationNeuron(structure="coupled", shape=(C, H), imp="channel").double()
    neuron.basis.data.normal_(0, 0.3)
    x = _leaf(torch.randn(T, N, C, H, dtype=D) * 0.7 + 0.5)

    def f(x, eigenvalues, basis, imp):
        neuron.reset_state()
        return torch.func.functional_call(neuron, {"eigenvalues": eigenvalues, "basis": basis, "imp": imp}, (x,))

    inputs = (x, _leaf(neuron.eigenvalues), _leaf(neuron.basis), _leaf(neuron.imp))
    assert torch.autograd.gradcheck(f, inputs, atol=1e-7)


def test_coupled_matrix_has_the_clamped_eigenvalues():
    neuron = BifurcationNeuron(structure="coupled", shape=(4, 5), bounds=(-1.0, 0.2), eigen_init=(-1.0, 0.2)).double()
    neuron.basis.data.normal_(0, 1.0)
    neuron.eigenvalues.data = torch.tensor([-3.0, -0.5, 0.1, 2.0], dtype=D)
    eig = torch.linalg.eigvalsh(neuron.coupling_matrix() - torch.eye(4, dtype=D))
    assert torch.allclose(eig, torch.tensor([-1.0, -0.5, 0.1, 0.2], dtype=D))


# --- against autograd through the step functions ---------------------------------------------------------


class _Spike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z, surrogate, strict):
        ctx.save_for_backward(z)
        ctx.surrogate = surrogate
        return (z > 0 if strict else z >= 0).to(z.dtype)

    @staticmethod
    def backward(ctx, grad):
        (z,) = ctx.saved_tensors
        return grad * ctx.surrogate.grad(z), None, None


def _autograd_oracle(x, v0, dyn, p):
    strict = "graded" in dyn.param_names  # snnTorch: strict comparison, graded spikes
    v = v0.expand(x.shape[1:])
    spikes = []
    for t in range(x.shape[0]):
        h = dyn.charge(x[t], v, p)
        s = _Spike.apply(h - p["threshold"], dyn.surrogate, strict)
        if strict:
            s = s * p["graded"]
        v = dyn.reset(h, s.detach() if getattr(dyn, "detach_reset", False) else s, p, v)
        spikes.append(s)
    return torch.stack(spikes), v


ORACLE_CASES = [
    (SpikingJellyLIF(detach_reset=True), {"tau": 2.0, "threshold": 1.0}),
    (SpikingJellyLIF(v_reset=None, detach_reset=True, surrogate="sigmoid"), {"tau": 3.0, "threshold": 0.9}),
    (SpikingJellyLIF(v_reset=None), {"tau": 2.0, "threshold": 1.0}),
    (SnnTorchLeaky(reset_mechanism="subtract"), {"beta": 0.9, "threshold": 1.0, "graded": 1.0}),
    (SnnTorchLeaky(reset_mechanism="zero"), {"beta": 0.8, "threshold": 1.0, "graded": 2.0}),
    (SnnTorchLeakyImmediate(reset_mechanism="subtract"), {"beta": 0.9, "threshold": 1.0, "graded": 1.5}),
    (SnnTorchLeakyImmediate(reset_mechanism="zero"), {"beta": 0.8, "threshold": 1.0, "graded": 2.0}),
    (SnnTorchSynapticZero(), {"beta": 0.8, "threshold": 1.0, "graded": 2.0}),
    (SnnTorchSynapticZeroImmediate(), {"beta": 0.8, "threshold": 0.6, "graded": 1.5}),
    (DiagonalBifurcation(detach_reset=True), {"eigenvalues": torch.linspace(-0.9, 0.15, C * 5).reshape(C, 5), "threshold": 1.0}),
    (DiagonalBifurcation(v_reset=0.0), {"eigenvalues": torch.linspace(-0.9, 0.15, C * 5).reshape(C, 5), "threshold": 1.0}),
]


@pytest.mark.parametrize("dyn, values", ORACLE_CASES, ids=lambda v: type(v).__name__ if not isinstance(v, dict) else "")
def test_backward_matches_autograd_through_the_steps(dyn, values):
    torch.manual_seed(1)
    x = torch.randn(6, 4, C, 5, dtype=D) * 0.8 + 0.4
    v0 = torch.rand(C, 5, dtype=D) * 0.5
    params = {k: torch.as_tensor(v, dtype=D) for k, v in values.items()}
    grad_s = torch.randn(6, 4, C, 5, dtype=D)
    grad_v = torch.randn(4, C, 5, dtype=D)

    def grads(fn):
        leaves = [_leaf(x), _leaf(v0)] + [_leaf(p) for p in params.values()]
        s, v = fn(leaves[0], leaves[1], dict(zip(params, leaves[2:])))
        torch.autograd.backward([s, v], [grad_s, grad_v])
        return s.detach(), [leaf.grad for leaf in leaves]

    def engine(x_, v0_, p):
        out = multistep(x_, dyn, p, v0_)
        return out.spikes, out.v

    s_ref, g_ref = grads(lambda x_, v0_, p: _autograd_oracle(x_, v0_, dyn, p))
    s_eng, g_eng = grads(engine)
    assert torch.equal(s_ref, s_eng)
    assert s_ref.sum() > 0, "the case should spike, or the reset path is untested"
    for a, b in zip(g_ref, g_eng):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-12)


def test_float32_gradients_reduce_over_the_batch():
    # a per-channel threshold's gradient is the sum over batch, time and space of the elementwise terms
    torch.manual_seed(0)
    x = torch.randn(5, 8, C, 4) + 0.5
    th = torch.full((C,), 1.0, requires_grad=True)
    multistep(x, SpikingJellyLIF(), {"tau": 2.0, "threshold": th}).spikes.sum().backward()
    per_sample = []
    for n in range(8):
        th_n = torch.full((C,), 1.0, requires_grad=True)
        multistep(x[:, n : n + 1], SpikingJellyLIF(), {"tau": 2.0, "threshold": th_n}).spikes.sum().backward()
        per_sample.append(th_n.grad)
    torch.testing.assert_close(th.grad, torch.stack(per_sample).sum(0), rtol=1e-5, atol=1e-6)
