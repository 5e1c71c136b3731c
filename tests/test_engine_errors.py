"""Bad input gets a clear error naming what was expected and what was given."""

import math

import pytest
import torch

from bsnn_lightning import LIFNeuron
from bsnn_lightning.engine import (
    Bifurcation,
    CoupledBifurcation,
    DiagonalBifurcation,
    SnnTorchLeaky,
    SnnTorchLeakyImmediate,
    SpikingJellyLIF,
    Surrogate,
    multistep,
    register_backend,
)

LIF = SpikingJellyLIF()
P = {"tau": 2.0, "threshold": 1.0}


def test_wrong_rank():
    with pytest.raises(ValueError, match=r"expected x of shape \[T, N, \.\.\.\].*got \[5\]"):
        multistep(torch.zeros(5), LIF, P)


def test_zero_time_steps():
    with pytest.raises(ValueError, match=r"at least one time step.*\[0, 4, 3\] \(T = 0\)"):
        multistep(torch.zeros(0, 4, 3), LIF, P)


def test_integer_input():
    with pytest.raises(TypeError, match="floating dtype, got torch.int64"):
        multistep(torch.zeros(2, 3, dtype=torch.long), LIF, P)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("dynamics", [SpikingJellyLIF(), SpikingJellyLIF(v_reset=None), DiagonalBifurcation()])
def test_nan_or_inf_in_the_input_is_named_with_its_time_step(bad, dynamics):
    x = torch.rand(6, 2, 3)
    x[2, 1, 0] = bad
    params = P if isinstance(dynamics, SpikingJellyLIF) else {"eigenvalues": torch.zeros(3), "threshold": 1.0}
    with pytest.raises(ValueError, match="the input x has NaN or Inf \\(first at time step 2\\)"):
        multistep(x, dynamics, params)


def test_nan_in_the_initial_state():
    v0 = torch.zeros(2, 3)
    v0[0, 0] = math.nan
    with pytest.raises(ValueError, match="the initial state v0 has NaN or Inf"):
        multistep(torch.rand(3, 2, 3), LIF, P, v0)


def test_nan_in_a_parameter():
    with pytest.raises(ValueError, match="the parameter 'threshold' has NaN or Inf"):
        multistep(torch.rand(3, 2, 3), LIF, {"tau": 2.0, "threshold": torch.tensor([1.0, math.nan, 1.0])})


def test_non_finite_float_parameter():
    with pytest.raises(ValueError, match="expected a finite tau, got inf"):
        multistep(torch.rand(3, 2, 3), LIF, {"tau": math.inf, "threshold": 1.0})


def test_initial_state_shape_mismatch_lists_the_accepted_shapes():
    msg = (
        r"expected initial state v0 of shape \[4, 3, 5\] \(full state\), \[3, 5\] \(per neuron\), "
        r"\[3\] \(per channel\), \[\] \(per layer\) for x of shape \[2, 4, 3, 5\], got \[4, 5\]"
    )
    with pytest.raises(ValueError, match=msg):
        multistep(torch.rand(2, 4, 3, 5), LIF, P, torch.zeros(4, 5))


def test_time_batch_mixup_is_caught_by_the_state_shape():
    x = torch.rand(8, 4, 3)  # [T=8, N=4, C=3]
    state = multistep(x, LIF, P).v  # [4, 3]
    with pytest.raises(ValueError, match=r"full state\).*got \[4, 3\]"):
        multistep(x.transpose(0, 1), LIF, P, state)  # [N, T, C] by mistake


def test_imp_shape_that_does_not_fit_the_layer():
    with pytest.raises(ValueError, match=r"expected initial state v0 of shape .*\[3\] \(per channel\).*got \[7\]"):
        multistep(torch.rand(2, 4, 3, 5), LIF, P, torch.zeros(7))
    neuron = LIFNeuron(imp="channel", shape=(3, 5))
    with pytest.raises(ValueError, match=r"built for samples of shape \[3, 5\], got input with samples of shape \[4, 5\]"):
        neuron(torch.rand(2, 4, 4, 5))


def test_parameter_shape_mismatch():
    with pytest.raises(ValueError, match=r"expected eigenvalues of shape \[3, 5\] \(per neuron\), \[3\] \(per channel\), \[\] \(per layer\) .* got \[5\]"):
        multistep(torch.rand(2, 4, 3, 5), DiagonalBifurcation(), {"eigenvalues": torch.zeros(5), "threshold": 1.0})


def test_missing_or_unknown_parameters():
    with pytest.raises(ValueError, match=r"SpikingJellyLIF expects parameters \['tau', 'threshold'\], got \['beta', 'tau'\]"):
        multistep(torch.rand(2, 3), LIF, {"tau": 2.0, "beta": 0.5})


def test_unknown_surrogate():
    with pytest.raises(ValueError, match=r"unknown surrogate 'erf'; expected one of \['atan', 'fast_sigmoid', 'sigmoid', 'triangle', 'superspike'\]"):
        Surrogate("erf")
    with pytest.raises(ValueError, match="expected surrogate alpha > 0, got -1.0"):
        Surrogate("atan", -1.0)


def test_unknown_backend():
    with pytest.raises(ValueError, match=r"unknown backend 'cuda'; expected one of \[.*'torch'.*'auto'\]"):
        multistep(torch.rand(2, 3), LIF, P, backend="cuda")
    with pytest.raises(ValueError, match="backend 'native' keeps a library's own neuron loop"):
        multistep(torch.rand(2, 3), LIF, P, backend="native")
    with pytest.raises(ValueError, match="'auto' is reserved"):
        register_backend("auto", lambda *a: None)


def test_backend_that_declines_says_why(monkeypatch):
    from bsnn_lightning.engine import backends

    monkeypatch.setattr(backends, "_BACKENDS", dict(backends._BACKENDS))  # registered for this test only
    register_backend("declines", lambda *a: None, supports=lambda x, d: "only runs on CUDA tensors")
    with pytest.raises(ValueError, match="backend 'declines' cannot run this call: only runs on CUDA tensors"):
        multistep(torch.rand(2, 3), LIF, P, backend="declines")


def test_auto_says_once_why_it_passed_over_a_backend_meant_for_the_device(monkeypatch, recwarn):
    """As "auto" on a GPU passes over "triton" for a 16-bit membrane: here a stand-in backend meant for CPU tensors
    that refuses 16-bit states, ahead of "torch"."""
    from bsnn_lightning.engine import SpikingJellyLIF, backends

    stand_in = backends.Backend("float32-only", backends.run_reference, lambda x, d: None, auto_devices=("cpu",))
    monkeypatch.setitem(backends._BACKENDS, "float32-only", stand_in)
    monkeypatch.setattr(backends, "AUTO_ORDER", ("float32-only", "torch"))
    monkeypatch.setattr(backends, "_SAID", set())
    x = torch.rand(3, 2, 4).half()
    sixteen_bit = SpikingJellyLIF(state_dtype=torch.float16)
    for _ in range(3):
        out = multistep(x, sixteen_bit, {"tau": 2.0, "threshold": 0.5})
    assert out.v.dtype == torch.float16  # the torch backend ran it, with its 16-bit state
    said = [w for w in recwarn if "backend 'auto' runs SpikingJellyLIF" in str(w.message)]
    assert len(said) == 1 and said[0].filename == __file__  # once, at this line's caller: the user's
    assert "'float32-only'" in str(said[0].message) and "state_dtype='float32'" in str(said[0].message)
    multistep(x, SpikingJellyLIF(), {"tau": 2.0, "threshold": 0.5})  # float32 state: taken, nothing said
    assert len([w for w in recwarn if "backend 'auto' runs" in str(w.message)]) == 1


def test_bad_dynamics_settings():
    with pytest.raises(ValueError, match="expected reset_mechanism 'subtract', 'zero' or 'none', got 'hard'"):
        SnnTorchLeaky(reset_mechanism="hard")
    with pytest.raises(ValueError, match="expected reset_mechanism 'subtract' or 'zero', got 'hard'"):
        SnnTorchLeakyImmediate(reset_mechanism="hard")
    with pytest.raises(ValueError, match=r"with no reset .* equals SnnTorchLeaky\(reset_mechanism='none'\)"):
        SnnTorchLeakyImmediate(reset_mechanism="none")
    with pytest.raises(TypeError, match="Bifurcation is a base class; construct DiagonalBifurcation or CoupledBifurcation"):
        Bifurcation()
    with pytest.raises(ValueError, match=r"expected eigenvalue bounds \(lo, hi\) with lo < hi, got \(0.2, -1.0\)"):
        DiagonalBifurcation(bounds=(0.2, -1.0))
    with pytest.raises(ValueError, match=r"expected coupling of shape \[3, 3\], got \[2, 2\]"):
        multistep(torch.rand(2, 4, 3), CoupledBifurcation(), {"coupling": torch.eye(2), "threshold": 1.0})
