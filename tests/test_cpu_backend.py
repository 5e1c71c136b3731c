"""The ``cpu`` backend (the reference's time loop compiled by inductor): spikes and states equal the reference's
bit for bit, gradients to rounding; which calls ``auto`` gives it; its reasons for the others; the fallback
without a C++ compiler.

Compiling is the cost here (seconds per variant, more on a loaded machine; inductor's on-disk cache makes a
rerun fast), so the fast subset compiles one forward and one backward variant, shared by its tests; the
matrix over every dynamics and 16-bit state is slow."""

import subprocess
import sys
import textwrap
import warnings
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bsnn_lightning.engine import (
    CoupledBifurcation,
    DiagonalBifurcation,
    SnnTorchLeaky,
    SnnTorchLeakyImmediate,
    SnnTorchSynapticZero,
    SnnTorchSynapticZeroImmediate,
    SpikingJelly014LIF,
    SpikingJelly014PLIF,
    SpikingJellyIF,
    SpikingJellyLIF,
    SpikingJellyPLIF,
    available_backends,
    multistep,
    resolve_backend,
)
from bsnn_lightning.engine import api, backends, cpu_backend
from triton_exactness import assert_matches_reference

ROOT = Path(__file__).resolve().parents[1]
LEAKY = {"beta": 0.9, "threshold": 1.0, "graded": 1.0}
LIF = {"tau": 2.0, "threshold": 1.0}


def _run(backend, dynamics, params, x, v0, needs=("x", "v0"), return_v_seq=True, seed=1):
    """Outputs and the gradients of a fixed random loss on spikes, final state and states."""
    x = x.detach().clone().requires_grad_("x" in needs)
    v0 = v0.detach().clone().requires_grad_("v0" in needs) if isinstance(v0, torch.Tensor) else v0
    params = {n: (v.detach().clone().requires_grad_(n in needs) if isinstance(v, torch.Tensor) else v) for n, v in params.items()}
    out = multistep(x, dynamics, params, v0, backend=backend, return_v_seq=return_v_seq)
    gen = torch.Generator().manual_seed(seed)
    loss = (out.spikes.float() * torch.randn(out.spikes.shape, generator=gen)).sum()
    loss = loss + (out.v.float() * torch.randn(out.v.shape, generator=gen)).sum()
    if return_v_seq:
        loss = loss + (out.v_seq.float() * torch.randn(out.v_seq.shape, generator=gen)).sum()
    leaves = {"x": x, "v0": v0, **params}
    wanted = {n: t for n, t in leaves.items() if isinstance(t, torch.Tensor) and t.requires_grad}
    grads = dict(zip(wanted, torch.autograd.grad(loss, list(wanted.values()))))
    return out, grads


def _assert_bitwise(out, ref_out):
    """Equal to the bit, signed zeros and NaN payloads included (``torch.equal`` takes -0.0 == 0.0)."""
    for name, a, b in zip(("spikes", "v", "v_seq"), out, ref_out):
        if a is None and b is None:
            continue
        bits = {2: torch.int16, 4: torch.int32, 8: torch.int64}[a.element_size()]
        assert torch.equal(a.contiguous().view(bits), b.contiguous().view(bits)), f"{name} differs in its bits"


def _check(dynamics, params, x, v0, needs=("x", "v0"), return_v_seq=True):
    out, grads = _run("cpu", dynamics, params, x, v0, needs, return_v_seq)
    ref_out, ref_grads = _run("torch", dynamics, params, x, v0, needs, return_v_seq)
    kept = 3 if return_v_seq else 2  # (spikes, v, v_seq), v_seq None when not asked for
    assert out.v_seq is None and ref_out.v_seq is None or return_v_seq
    assert_matches_reference(out[:kept], ref_out[:kept], grads, ref_grads)
    _assert_bitwise(out, ref_out)


# --- fast: one compiled variant per direction ----------------------------------------------------------


def _fast_case(n=3, c=4, length=5, seed=0):
    """snnTorch Leaky with a per-channel beta and a per-neuron initial state, both learnable: the shared
    variant of the fast tests (same dynamics, steps, dtypes and ranks, so no recompilation)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(3, n, c, length, generator=gen) + 0.6
    params = {"beta": torch.rand(c, generator=gen) * 0.5 + 0.5, "threshold": 1.0, "graded": 1.0}
    v0 = torch.rand(c, length, generator=gen)
    return SnnTorchLeaky(), params, x, v0


@pytest.fixture
def auto_picks_cpu(monkeypatch):
    """"auto" as a user gets it (the root conftest keeps it off the compiled path for the other tests)."""
    monkeypatch.delenv(cpu_backend.AUTO_SWITCH, raising=False)
    registered = backends._BACKENDS["cpu"]
    monkeypatch.setitem(backends._BACKENDS, "cpu", replace(registered, auto_min_elements=cpu_backend.auto_min_elements()))


def test_auto_switch(monkeypatch):
    monkeypatch.setenv(cpu_backend.AUTO_SWITCH, "off")
    assert cpu_backend.auto_min_elements() == sys.maxsize
    monkeypatch.setenv(cpu_backend.AUTO_SWITCH, "on")
    assert cpu_backend.auto_min_elements() == cpu_backend.AUTO_MIN_ELEMENTS
    monkeypatch.setenv(cpu_backend.AUTO_SWITCH, "sometimes")
    with pytest.raises(ValueError, match="expected BSNN_CPU_AUTO 'on' or 'off', got 'sometimes'"):
        cpu_backend.auto_min_elements()


def test_registered_and_picked_by_auto_for_large_cpu_inputs(auto_picks_cpu):
    assert "cpu" in available_backends()
    large = torch.zeros(4, 2, cpu_backend.AUTO_MIN_ELEMENTS // 8)
    small = torch.zeros(4, 2, 3)
    assert resolve_backend("auto", large, SpikingJellyLIF()).name == "cpu"
    assert resolve_backend("auto", large, replace(SnnTorchLeaky(), state_dtype=torch.float16)).name == "torch"
    assert resolve_backend("auto", small, SpikingJellyLIF()).name == "torch"  # its fixed cost would dominate
    assert resolve_backend("cpu", small, SpikingJellyLIF()).name == "cpu"  # by name, any size
    # what it does not run, auto leaves to the reference
    assert resolve_backend("auto", torch.zeros(4, 2, 8, 4096), CoupledBifurcation()).name == "torch"
    assert resolve_backend("auto", large, SpikingJellyLIF(relaxed=True)).name == "torch"


@pytest.mark.parametrize(
    "x, dynamics, says",
    [
        (torch.zeros(2, 2, 3, 4), CoupledBifurcation(), "mixes channels"),
        (torch.zeros(2, 2, 3), SpikingJellyLIF(relaxed=True), "relaxed"),
        (torch.zeros(2, 2, 3), SpikingJelly014LIF(state_dtype=torch.bfloat16), "does not round compiled"),
        (torch.zeros(2, 2, 3), SpikingJellyPLIF(state_dtype=torch.float16), "does not round compiled"),
        (torch.zeros(2, 2, 3, device="meta"), SpikingJellyLIF(), "CPU tensors"),
    ],
)
def test_says_why_it_cannot_run(x, dynamics, says):
    with pytest.raises(ValueError, match=f"backend 'cpu' cannot run this call: .*{says}"):
        resolve_backend("cpu", x, dynamics)


def test_matches_reference_bit_for_bit():
    dynamics, params, x, v0 = _fast_case()
    _check(dynamics, params, x, v0, needs=("x", "v0", "beta"))


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(2, 5), c=st.integers(2, 6), length=st.integers(2, 9), seed=st.integers(0, 2**16))
def test_one_variant_serves_every_size(n, c, length, seed):
    """Sizes are dynamic: new batch sizes and widths reuse the compiled variant, and stay exact."""
    dynamics, params, x, v0 = _fast_case(n, c, length, seed)
    _check(dynamics, params, x, v0, needs=("x", "v0", "beta"))


def test_a_negative_view_computes_what_its_values_say():
    """``torch._neg_view`` keeps a negation as a bit: the compiled loops read memory, so multistep resolves it
    first (dynamo's own graph for such an input read the stored values, un-negated, on torch 2.13)."""
    dynamics, params, x, v0 = _fast_case()
    negated = {**params, "beta": torch._neg_view(-params["beta"])}
    out = multistep(torch._neg_view(-x), dynamics, negated, torch._neg_view(-v0), backend="cpu")
    ref = multistep(x, dynamics, params, v0, backend="torch")
    _assert_bitwise(out, ref)


def test_the_finite_check_reads_the_loops_own_sum(monkeypatch):
    """The forward loop sums the final state in passing (the backend is registered with ``state_sum``): the
    synchronous check reads that sum, not the state again; it equals the state's sum to rounding, and an Inf in
    x still raises, naming its step."""
    dynamics, params, x, v0 = _fast_case()
    assert backends._BACKENDS["cpu"].state_sum and not backends._BACKENDS["torch"].state_sum
    seen, real = [], api._all_finite
    monkeypatch.setattr(api, "_all_finite", lambda tensors, first_sum=None: seen.append((tensors[0], first_sum)) or real(tensors, first_sum))
    out = multistep(x, dynamics, params, v0, backend="cpu", check_finite="sync")
    ((v, total),) = seen
    assert v is out.v and total is not None and total.shape == () and total.dtype == torch.float32
    torch.testing.assert_close(total, out.v.sum(dtype=torch.float32))
    multistep(x, dynamics, params, v0, backend="torch", check_finite="sync")
    assert seen[1][1] is None  # the reference hands no sum: the check takes the state's own
    bad = x.clone()
    bad[2, 0, 1, 3] = float("inf")
    with pytest.raises(ValueError, match=r"the input x has NaN or Inf \(first at time step 2\)"):
        multistep(bad, dynamics, params, v0, backend="cpu", check_finite="sync")


def test_with_nothing_to_differentiate_the_forward_loop_runs_alone(monkeypatch):
    """No tensor requires a gradient (or grad mode is off): the compiled forward runs without an autograd
    Function around it (its apply cost about 0.08 ms of a cold [8, 128, 1024] forward), under no_grad either way,
    so grad mode on or off reuses one compiled variant; the results equal the reference's to the bit."""
    dynamics, params, x, v0 = _fast_case()
    params = {**params, "beta": params["beta"].detach()}
    with torch.no_grad():
        first = multistep(x, dynamics, params, v0, backend="cpu", return_v_seq=True)
    loops = [loop for spec, loop in cpu_backend._COMPILED.items() if spec[0] == "forward" and not spec[7]]
    compiled = sum(loop.calls["dynamo"] for loop in loops)

    def no_function(*args):
        raise AssertionError("the autograd Function ran for a call with nothing to differentiate")

    monkeypatch.setattr(cpu_backend._FusedMultistep, "apply", no_function)
    with torch.no_grad():
        again = multistep(x, dynamics, params, v0, backend="cpu", return_v_seq=True)
    grad_on = multistep(x, dynamics, params, v0, backend="cpu", return_v_seq=True)
    assert torch.is_grad_enabled() and grad_on.spikes.grad_fn is None and not grad_on.v.requires_grad
    assert sum(loop.calls["dynamo"] for loop in loops) == compiled  # no other variant compiled
    ref = multistep(x, dynamics, params, v0, backend="torch", return_v_seq=True)
    for out in (first, again, grad_on):
        _assert_bitwise(out, ref)


def test_the_final_state_is_not_a_view_of_what_the_backward_keeps():
    dynamics, params, x, v0 = _fast_case()
    leaves = [x.requires_grad_(), v0.requires_grad_(), params["beta"].requires_grad_()]
    out = multistep(x, dynamics, params, v0, backend="cpu", return_v_seq=True)
    assert out.v.untyped_storage().data_ptr() != out.v_seq.untyped_storage().data_ptr()
    out.v.add_(1.0)  # the user's in-place change may not reach the saved charged potentials
    assert all(g is not None for g in torch.autograd.grad(out.spikes.sum(), leaves))


def _saved_by_the_call(dynamics, params, x, v0) -> list[torch.Tensor]:
    """The tensors the call keeps for its backward (autograd's saved-tensor hooks see each one)."""
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        multistep(x, dynamics, params, v0, backend="cpu")
    return saved


def test_the_backward_charges_again_from_x_and_keeps_nothing_else():
    """snnTorch's Leaky charges with a product: the backward reads x again (the caller's own tensor, not a copy)
    and runs the steps again, so the forward keeps no charged potentials: no tensor of x's size but x."""
    dynamics, params, x, v0 = _fast_case()
    x.requires_grad_()
    big = [t for t in _saved_by_the_call(dynamics, params, x, v0) if t.numel() >= x[0].numel()]
    assert [t.data_ptr() for t in big] == [x.data_ptr()]


def test_changing_x_in_place_before_the_backward_is_refused():
    """The backward reads x, so x changed in place after the call would give wrong gradients: autograd refuses."""
    dynamics, params, x, v0 = _fast_case()
    x = x.requires_grad_()
    y = x * 1.0
    out = multistep(y, dynamics, params, v0, backend="cpu")
    y.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.spikes.sum().backward()


def test_under_a_dispatch_mode_it_runs_the_reference():
    """A FLOP counter (Lightning's model summary runs the example input under one) cannot be compiled through."""
    from torch.utils.flop_counter import FlopCounterMode

    dynamics, params, x, v0 = _fast_case()
    with FlopCounterMode(display=False):
        out = multistep(x, dynamics, params, v0, backend="cpu")
    assert torch.equal(out.spikes, multistep(x, dynamics, params, v0, backend="torch").spikes)


def test_without_a_compiler_it_says_why_once_and_auto_runs_the_reference(monkeypatch, auto_picks_cpu):
    from torch._inductor import config

    # inductor's own patch, not monkeypatch: on torch 2.14.1, undoing a monkeypatch of config.cpp.cxx left the
    # setting hidden ("torch._inductor.config.cpp.cxx does not exist"), and every later C++ compile failed
    missing = config.patch({"cpp.cxx": (str(ROOT / "no-such-compiler" / "g++"),)})
    monkeypatch.setattr(cpu_backend, "_COMPILER", [])
    x = torch.zeros(4, 2, cpu_backend.AUTO_MIN_ELEMENTS // 8)
    with missing, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert resolve_backend("auto", x, SpikingJellyLIF()).name == "torch"
        assert resolve_backend("auto", x, SnnTorchLeaky()).name == "torch"
        with pytest.raises(ValueError, match="backend 'cpu' cannot run this call: inductor found no C\\+\\+ compiler"):
            resolve_backend("cpu", x, SpikingJellyLIF())
    said = [str(w.message) for w in caught]
    assert len(said) == 1 and "no C++ compiler" in said[0] and "no-such-compiler" in said[0]
    assert config.cpp.cxx != (str(ROOT / "no-such-compiler" / "g++"),)  # restored


# --- slow: every dynamics, 16-bit states, the fallback in a fresh process ------------------------------

DYNAMICS = [
    (SpikingJellyLIF(), LIF),
    (SpikingJellyLIF(v_reset=None, decay_input=False, detach_reset=True, surrogate="atan"), {"tau": 1.7, "threshold": 0.9}),
    (SpikingJellyPLIF(surrogate="triangle"), {"q": 0.4, "threshold": 1.0}),
    (SpikingJelly014LIF(), {"tau": 3.0, "threshold": 1.0}),
    (SpikingJelly014PLIF(v_reset=None), {"q": 0.3, "threshold": 1.0}),
    (SpikingJellyIF(surrogate="fast_sigmoid"), {"threshold": 1.0}),
    (SnnTorchLeaky(reset_mechanism="zero"), LEAKY),
    (SnnTorchLeaky(reset_mechanism="none", surrogate="sigmoid:5"), {"beta": 0.7, "threshold": 1.0, "graded": 2.0}),
    (SnnTorchLeakyImmediate(), LEAKY),
    (SnnTorchLeakyImmediate(reset_mechanism="zero"), LEAKY),
    (SnnTorchSynapticZero(), LEAKY),
    (SnnTorchSynapticZeroImmediate(), LEAKY),
    (DiagonalBifurcation(), {"eigenvalues": 0.1, "threshold": 1.0}),
    (DiagonalBifurcation(v_reset=0.0, bounds=(-0.5, 0.1)), {"eigenvalues": -0.2, "threshold": 0.8}),
]


def _tensor_params(params, c, length, gen):
    """Every parameter a learnable tensor: the first per channel, the rest per neuron or per layer."""
    out = {}
    for i, (name, value) in enumerate(params.items()):
        shape = (c,) if i == 0 else ((c, length) if i == 1 else ())
        out[name] = torch.full(shape, float(value)) * (1 + 0.1 * torch.rand(shape, generator=gen))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("dynamics, params", DYNAMICS, ids=lambda d: type(d).__name__ if not isinstance(d, dict) else "")
def test_every_dynamics_matches_reference(dynamics, params):
    """Every parameter a learnable tensor (per channel, per neuron, per layer), a per-channel initial state,
    the states returned; every gradient (one compiled variant per direction and dynamics)."""
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(5, 3, 4, 6, generator=gen) * 0.8 + 0.5
    tensors = _tensor_params(params, 4, 6, gen)
    _check(dynamics, tensors, x, torch.rand(4, generator=gen), needs=("x", "v0", *tensors))


@pytest.mark.slow
@pytest.mark.parametrize(
    "dynamics, params",
    [DYNAMICS[0], DYNAMICS[2], DYNAMICS[9], DYNAMICS[11], DYNAMICS[12]],
    ids=lambda d: type(d).__name__ if not isinstance(d, dict) else "",
)
def test_charging_again_in_the_backward_is_reading_what_the_forward_saved(dynamics, params, monkeypatch):
    """The backward that charges again from x computes what the backward from the saved charged potentials (and
    states) computes: x's gradient bit for bit (pointwise, so any other h would show), the summed ones to
    rounding; and only the dynamics that saves keeps a tensor of x's size besides x."""
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(5, 3, 4, 6, generator=gen) * 0.8 + 0.5
    tensors = _tensor_params(params, 4, 6, gen)
    v0 = torch.rand(4, generator=gen)
    needs = ("x", "v0", *tensors)
    outs = {}
    for recharge in (True, False):
        monkeypatch.setattr(cpu_backend, "_recharges", lambda dynamics, recharge=recharge: recharge)
        outs[recharge] = _run("cpu", dynamics, tensors, x, v0, needs)
        x_needs = x.detach().requires_grad_()
        leaves = {n: t.detach().requires_grad_() for n, t in tensors.items()}
        saved = _saved_by_the_call(dynamics, leaves, x_needs, v0)
        others = [t for t in saved if t.numel() >= x[0].numel() and t.data_ptr() != x_needs.data_ptr()]
        assert (others == []) == recharge
    (out, grads), (saved_out, saved_grads) = outs[True], outs[False]
    _assert_bitwise(out, saved_out)
    assert torch.equal(grads["x"].view(torch.int32), saved_grads["x"].view(torch.int32))
    assert_matches_reference(out[:3], saved_out[:3], grads, saved_grads)
    monkeypatch.undo()
    assert cpu_backend._recharges(dynamics) == (type(dynamics) is not SpikingJellyLIF)  # its charge divides


@pytest.mark.slow
@pytest.mark.parametrize("dynamics, params", [DYNAMICS[1], DYNAMICS[9]], ids=["SpikingJellyLIF", "SnnTorchLeakyImmediate"])
def test_one_step_float_parameters_full_state(dynamics, params):
    """One step per call (a user's own time loop), float parameters, a full initial state, no states returned."""
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(1, 3, 4, 6, generator=gen) + 0.5
    _check(dynamics, params, x, torch.rand(3, 4, 6, generator=gen) * 0.5, return_v_seq=False)


@pytest.mark.parametrize("state_dtype", [torch.float16, torch.bfloat16])
def test_16_bit_states_run_on_the_reference(auto_picks_cpu, state_dtype):
    """A 16-bit state is left to the reference: compiled, SpikingJelly's PLIF (a float32 0-d q), LIF with
    decay_input=False (tau 1.7) and 0.0.0.0.14's product-form LIF gave final states that differ from eager
    PyTorch's in the last bit (inductor rounds the float32 parameter to 16 bits before each product). "auto"
    runs the reference, bit for bit what ``backend="torch"`` gives."""
    x = (torch.randn(2, 2, cpu_backend.AUTO_MIN_ELEMENTS // 2, generator=torch.Generator().manual_seed(4)) + 0.5)
    x = x.to(state_dtype)
    dynamics = SpikingJellyPLIF(state_dtype=state_dtype)
    params = {"q": torch.tensor(0.37), "threshold": 1.0}
    assert resolve_backend("auto", x, dynamics).name == "torch"
    auto, ref = (multistep(x, dynamics, params, backend=b) for b in ("auto", "torch"))
    _assert_bitwise(auto, ref)


@pytest.mark.slow
@pytest.mark.parametrize(
    "x_dtype, dynamics, params",
    [(torch.bfloat16, SnnTorchLeakyImmediate(), LEAKY), (torch.float16, SpikingJellyLIF(), LIF)],
    ids=["bfloat16-charging-again", "float16-saving"],
)
def test_16_bit_inputs_with_a_float32_state(x_dtype, dynamics, params):
    """An input in 16 bits (a layer's output under autocast) with the state in float32: spikes and states bit for
    bit, gradients to rounding, on both backwards (the one that charges again reads the 16-bit x it keeps)."""
    gen = torch.Generator().manual_seed(6)
    x = (torch.randn(6, 3, 4, 8, generator=gen) + 0.5).to(x_dtype)
    assert dynamics.compute_dtype(x_dtype) == torch.float32
    _check(dynamics, params, x, torch.rand(4, 8, generator=gen), needs=("x", "v0"))


@pytest.mark.slow
@pytest.mark.parametrize("uses", ["spikes", "v", "v_seq"])
def test_a_loss_on_one_output_only(uses):
    """The outputs a loss leaves unused get no gradient tensor (a broadcast zero for the final state, zeros
    for the others): the gradients are still the reference's, to rounding."""
    dynamics, params, x, v0 = _fast_case(n=4, c=16, length=8)
    grads = {}
    for backend in ("cpu", "torch"):
        xx = x.detach().clone().requires_grad_()
        out = multistep(xx, dynamics, params, v0, backend=backend, return_v_seq=uses == "v_seq")
        used = getattr(out, uses)
        (grads[backend],) = torch.autograd.grad((used * torch.linspace(-1, 1, used.numel()).view(used.shape)).sum(), xx)
    torch.testing.assert_close(grads["cpu"], grads["torch"], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_size_one_dimensions_and_float64():
    """Sizes of one are specialised by the compiler (a recompilation), float64 runs in float64."""
    dynamics, params, x, v0 = _fast_case(n=1, c=1, length=1)
    _check(dynamics, params, x, v0, needs=("x", "v0", "beta"))
    dynamics, params, x, v0 = _fast_case()
    _check(dynamics, {n: (v.double() if isinstance(v, torch.Tensor) else v) for n, v in params.items()}, x.double(), v0.double())


@pytest.mark.slow
def test_inside_a_compiled_model_it_runs_the_plain_loop():
    dynamics, params, x, v0 = _fast_case()
    compiled = torch.compile(lambda x: multistep(x, dynamics, params, v0, backend="cpu").spikes, fullgraph=True)
    assert torch.equal(compiled(x), multistep(x, dynamics, params, v0, backend="torch").spikes)


@pytest.mark.slow
def test_no_compiler_in_a_fresh_process(tmp_path):
    """CXX pointing at a missing binary: one warning, the reference's results, and a clear refusal by name."""
    script = textwrap.dedent(
        """
        import warnings, torch
        from bsnn_lightning.engine import SpikingJellyLIF, multistep
        x = torch.randn(4, 8, 64, 64) + 0.5
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            a = multistep(x, SpikingJellyLIF(), {"tau": 2.0, "threshold": 1.0})
            b = multistep(x, SpikingJellyLIF(), {"tau": 3.0, "threshold": 1.0})
        said = [str(w.message) for w in caught]
        assert len(said) == 1 and "no C++ compiler" in said[0], said
        assert torch.equal(a.spikes, multistep(x, SpikingJellyLIF(), {"tau": 2.0, "threshold": 1.0}, backend="torch").spikes)
        try:
            multistep(x, SpikingJellyLIF(), {"tau": 2.0, "threshold": 1.0}, backend="cpu")
        except ValueError as error:
            assert "no C++ compiler" in str(error), error
        else:
            raise AssertionError("backend='cpu' ran without a compiler")
        print("fallback ok")
        """
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "CXX": str(tmp_path / "missing" / "g++"), "HOME": str(tmp_path)}
    # (BSNN_CPU_AUTO unset: auto as a user gets it)
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "fallback ok" in done.stdout
