"""The direct path of a compiled loop (bsnn_lightning.engine.direct_call): taken only where dynamo's own
guards would pass, and computing what dynamo's path computes, on real torch.compile graphs."""

from __future__ import annotations

import pytest
import torch

from bsnn_lightning.engine import SnnTorchLeaky, SpikingJellyLIF, cpu_backend, direct_call, multistep
from bsnn_lightning.engine.direct_call import CompiledLoop
from bsnn_lightning.engine.torch_modes import CHECKED_ON, EXACT_INDUCTOR_OPTIONS


def _leaky(x, v0, beta, threshold):
    """A small pointwise loop with Python-float parameters (dynamo passes them as tensors); v0 None is rest."""
    v, out = (torch.zeros((), dtype=x.dtype) if v0 is None else v0).expand(x.shape[1:]), []
    for t in range(x.shape[0]):
        v = beta * v + x[t]
        s = (v >= threshold).to(x.dtype)
        v = v - s * threshold
        out.append(s)
    return torch.stack(out), v


def _fresh(fn):
    """``fn`` with a code object of its own, so that each test compiles its own graphs."""
    import types

    return types.FunctionType(fn.__code__.replace(), fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)


def _identical(a, b) -> bool:
    """The same dtype, shape and bits (NaN where NaN)."""
    bits = {4: torch.int32, 8: torch.int64}[a.element_size()]
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a.contiguous().view(bits), b.contiguous().view(bits))


def _compiled(fn=_leaky):
    return CompiledLoop(_fresh(fn), EXACT_INDUCTOR_OPTIONS)


def _inputs(shape=(4, 3, 5), dtype=torch.float32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=gen, dtype=dtype) + 0.5, torch.zeros((), dtype=dtype)


def test_the_private_api_it_relies_on_is_checked_on_this_torch():
    assert torch.__version__.split("+")[0] in CHECKED_ON
    assert callable(torch._as_tensor_fullprec) and torch._as_tensor_fullprec(0.5).dtype == torch.float64
    assert torch._C._dynamo.guards.GlobalStateGuard().check()


def test_the_second_call_is_direct_and_equal_to_the_eager_loop():
    loop = _compiled()
    x, v0 = _inputs()
    with torch.no_grad():
        first = loop(x, v0, 0.9, 1.0)
        second = loop(x, v0, 0.9, 1.0)
        assert loop.refused is None and loop.calls == {"direct": 1, "dynamo": 1}
        # new values: the same graph where dynamo passed the floats as inputs (it may instead bake them in, as it
        # did for the cpu backend's loops in a process that had compiled others: then a new graph, guarded by value)
        other = loop(x * 2, v0, 0.8, 0.7)
    assert loop.refused is None and sum(loop.calls.values()) == 3
    for got, args in ((first, (x, v0, 0.9, 1.0)), (second, (x, v0, 0.9, 1.0)), (other, (x * 2, v0, 0.8, 0.7))):
        expected = _leaky(*args)
        assert all(torch.equal(a, b) for a, b in zip(got, expected))


@pytest.mark.parametrize(
    "change",
    ["grad mode", "dtype", "size one", "strided", "rank", "a tensor for a float", "None for a tensor", "NaN"],
)
def test_a_call_that_dynamo_would_guard_against_goes_through_dynamo(change):
    loop = _compiled()
    x, v0 = _inputs()
    with torch.no_grad():
        loop(x, v0, 0.9, 1.0)
    args = {
        "grad mode": (x, v0, 0.9, 1.0),
        "dtype": _inputs(dtype=torch.float64),
        "size one": _inputs(shape=(4, 1, 5)),
        "strided": (_inputs(shape=(4, 5, 3))[0].transpose(1, 2), v0),
        "rank": _inputs(shape=(4, 3, 5, 2)),
        "a tensor for a float": (x, v0, torch.tensor(0.9), 1.0),
        "None for a tensor": (x, None, 0.9, 1.0),
        "NaN": (x, v0, float("nan"), 1.0),
    }[change]
    args = args if len(args) == 4 else (*args, 0.9, 1.0)
    with torch.set_grad_enabled(change == "grad mode"):
        got = loop(*args)
        again = loop(*args)  # the new graph is bound in turn
    assert loop.calls == {"direct": 1, "dynamo": 2}, loop.refused
    expected = _leaky(*args)
    for out in (got, again):
        assert all(_identical(a, b) for a, b in zip(out, expected))


def test_a_negative_view_is_not_called_directly():
    """A tensor whose negation is a bit (``torch._neg_view``) has other dispatch keys: dynamo's tensor guard
    recompiles for it, and so the direct path does not take it. (The graph dynamo compiles for it reads the
    stored values without the negation on torch 2.13: multistep resolves such views for every backend,
    ``tests/test_cpu_backend.py``.)"""
    loop = _compiled()
    x, v0 = _inputs()
    with torch.no_grad():
        loop(x, v0, 0.9, 1.0)
        loop(torch._neg_view(-x), v0, 0.9, 1.0)
    assert loop.calls == {"direct": 0, "dynamo": 2}


def _weighted_sum(a, b, scale):
    return (a * scale + b,)


def test_one_tensor_at_two_places_is_guarded():
    """Dynamo's graph for ``f(a, a)`` reads ``a`` once (and guards that the two arguments are one tensor); the
    direct path of that graph must not take ``f(a, b)``, nor that of ``f(a, b)`` take ``f(a, a)``."""
    loop = _compiled(_weighted_sum)
    a, b = torch.arange(5.0), torch.arange(5.0) * 3
    calls = [(a, b, 0.5), (a, a, 0.5), (a, a, 0.5), (a.double(), b.double(), 0.5), (a, b, 0.5), (a, a, 0.25)]
    with torch.no_grad():
        outs = [loop(*args) for args in calls]
    assert [torch.equal(out[0], _weighted_sum(*args)[0]) for out, args in zip(outs, calls)] == [True] * len(calls)
    # (a, b) and (a, a) compile; their repeats at 0.5 are direct; the float64 call compiles (no graph takes it);
    # (a, a) at 0.25 is direct unless dynamo baked the float in
    assert loop.calls["direct"] >= 2 and sum(loop.calls.values()) == len(calls), (loop.calls, loop.refused)


def test_switched_off_every_call_goes_through_dynamo(monkeypatch):
    monkeypatch.setenv(direct_call.SWITCH, "off")
    loop = _compiled()
    x, v0 = _inputs()
    with torch.no_grad():
        outs = [loop(x, v0, 0.9, 1.0) for _ in range(3)]
    assert loop.calls == {"direct": 0, "dynamo": 3}
    assert all(torch.equal(a, b) for out in outs for a, b in zip(out, _leaky(x, v0, 0.9, 1.0)))
    monkeypatch.setenv(direct_call.SWITCH, "sideways")
    with pytest.raises(ValueError, match="expected BSNN_CPU_DIRECT 'on' or 'off', got 'sideways'"):
        direct_call.enabled()


def test_a_loop_returning_one_tensor_twice_keeps_dynamos_path():
    """Dynamo returns a tensor that appears twice once from the graph: the outputs cannot be placed, so the
    direct path is refused (with the reason), and every call stays correct."""

    def twice(x, scale):
        y = x * scale
        return y, y

    loop = _compiled(twice)
    x = torch.arange(6.0)
    with torch.no_grad():
        outs = [loop(x, 0.5) for _ in range(3)]
    assert loop.calls == {"direct": 0, "dynamo": 3}
    assert "outputs" in loop.refused
    assert all(torch.equal(t, x * 0.5) for out in outs for t in out)


def test_a_loop_that_writes_its_inputs_runs_once_per_call():
    """Binding calls the graph once more, for its check: a loop that writes an argument in place would then
    write it twice in one call. It is refused, and every call goes through dynamo, once."""

    def bump(x, counter):
        counter.add_(1.0)
        return (x * 2.0,)

    loop = _compiled(bump)
    x, counter = torch.arange(4.0), torch.zeros(())
    with torch.no_grad():
        outs = [loop(x, counter) for _ in range(3)]
    assert counter.item() == 3.0
    assert loop.calls == {"direct": 0, "dynamo": 3} and "writes its inputs" in loop.refused
    assert all(torch.equal(out[0], x * 2.0) for out in outs)


def test_inductors_function_is_called_itself_whether_compiled_or_served_from_aot_autograds_cache():
    """The direct path calls inductor's compiled function without AOT autograd's wrappers: the one AOT autograd
    handed inductor (the first loop, AOT autograd's cache off), or, where that cache served the graph and handed
    nothing over (the third loop: the second one stored it, unless an earlier process had), the one found
    inside the compiled function. Either way the calls are direct and equal."""
    loops = [_compiled() for _ in range(3)]
    x, v0 = _inputs()
    with torch.no_grad():
        for i, loop in enumerate(loops):
            with torch._functorch.config.patch(enable_autograd_cache=i > 0):
                first = loop(x, v0, 0.9, 1.0)
            second = loop(x, v0, 0.9, 1.0)
            assert loop.calls == {"direct": 1, "dynamo": 1} and loop.refused is None
            assert all(_identical(a, b) for a, b in zip(first, second))
            assert all(_identical(a, b) for a, b in zip(second, _leaky(x, v0, 0.9, 1.0)))
    assert [loop._direct[0].through for loop in loops] == ["inductor"] * 3
    assert len(loops[0]._captures[0].inner) == 1 and loops[2]._captures[0].inner == []


def test_a_training_graph_keeps_aot_autograds_function_and_its_gradients():
    """With grad mode on and an input that requires grad, AOT autograd compiles a forward and a backward inside
    an autograd Function: the direct path calls that whole function (inductor's alone would drop the gradient),
    and the gradients equal eager PyTorch's."""
    loop = _compiled()
    x, v0 = _inputs()
    grads = []
    for _ in range(3):
        leaf = x.clone().requires_grad_()
        spikes, v = loop(leaf, v0, 0.9, 1.0)
        (grad,) = torch.autograd.grad(v.sum(), leaf)
        grads.append(grad)
    leaf = x.clone().requires_grad_()
    (expected,) = torch.autograd.grad(_leaky(leaf, v0, 0.9, 1.0)[1].sum(), leaf)
    assert loop.calls == {"direct": 2, "dynamo": 1} and loop.refused is None
    assert [direct.through for direct in loop._direct] == ["aot"]
    assert all(torch.equal(grad, expected) for grad in grads)


def test_an_output_that_views_another_keeps_its_values_and_layout():
    """Inductor returns the second output as a view of the first (one buffer), as the call through dynamo does;
    the direct call returns the same values, shapes and strides."""

    def transposed(x, scale):
        y = x * scale
        return y, y.t()

    loop = _compiled(transposed)
    x = torch.arange(6.0).reshape(2, 3)
    with torch.no_grad():
        outs = [loop(x, 0.5) for _ in range(3)]
    assert loop.calls["direct"] == 2 and loop.refused is None
    for y, yt in outs:
        assert torch.equal(y, x * 0.5) and torch.equal(yt, (x * 0.5).t()) and yt.stride() == (1, 3)


def _floor_scaled(x, scale):
    import math

    return (x * math.floor(scale * 10),)


def _branch_on_scale(x, scale):
    return (x * scale if scale > 0.5 else x - scale,)


@pytest.mark.parametrize("fn", [_floor_scaled, _branch_on_scale])
def test_a_float_whose_value_the_graph_holds_is_guarded_by_its_value(fn):
    """Dynamo bakes a float whose value the trace needed into the graph and guards that value (or, passing it
    as a tensor, keeps a guard on it in the shape environment). The direct path then takes only calls with that
    very value (to the bit: ``_same_number``), or refuses the graph; every result is the eager function's."""
    loop = _compiled(fn)
    x = torch.arange(-2.0, 2.0)
    values = [0.91, 0.91, 0.35, 0.91, 0.35, 0.2]
    with torch.no_grad():
        outs = [loop(x, value) for value in values]
    for value, out in zip(values, outs):
        expected = fn(x, value)[0]
        assert torch.equal(out[0].view(torch.int32), expected.view(torch.int32)), value
    shape_guard = "a guard of the shape environment names a value that is not among the graph's inputs"
    if loop.refused is not None:  # the branch, when dynamo passed the float as a tensor
        assert fn is _branch_on_scale and loop.refused.startswith(shape_guard) and loop.calls["direct"] == 0
    else:  # baked in: the repeats of 0.91 and 0.35 are direct, no new value is
        assert loop.calls["direct"] >= 3, loop.calls


@pytest.mark.slow
@pytest.mark.parametrize("library", ["snnTorch", "SpikingJelly"])
def test_the_cpu_backend_calls_its_loops_directly_and_stays_exact(library):
    """Forward and backward through the cpu backend: after the first call both loops are called directly, and
    spikes, states and gradients equal the reference's (the backward's surrogate reads a closure value and a
    module global, math.pi: both are among the graph's inputs)."""
    if library == "snnTorch":
        dynamics, params, v0 = SnnTorchLeaky(reset_mechanism="subtract"), {"beta": 0.9, "threshold": 1.0, "graded": 1.0}, torch.zeros(6, 40)
    else:
        dynamics, params, v0 = SpikingJellyLIF(surrogate="sigmoid", v_reset=0.0, decay_input=True), {"tau": 2.0, "threshold": 1.0}, 0.0
    gen = torch.Generator().manual_seed(3)
    before = {spec: dict(loop.calls) for spec, loop in cpu_backend._COMPILED.items()}
    for step in range(3):
        x = (torch.randn(4, 6, 40, generator=gen) + 0.6).requires_grad_()
        grad = torch.randn(4, 6, 40, generator=gen)
        outs = {}
        for backend in ("cpu", "torch"):
            out = multistep(x, dynamics, params, v0, backend=backend)
            (gx,) = torch.autograd.grad(out.spikes, x, grad)
            outs[backend] = (out.spikes, out.v, gx)
        assert torch.equal(outs["cpu"][0], outs["torch"][0]) and torch.equal(outs["cpu"][1], outs["torch"][1])
        torch.testing.assert_close(outs["cpu"][2], outs["torch"][2], rtol=1e-6, atol=1e-7)
    used = {}
    for spec, loop in cpu_backend._COMPILED.items():
        old = before.get(spec, {"direct": 0, "dynamo": 0})
        calls = {path: loop.calls[path] - old[path] for path in old}
        if sum(calls.values()):
            used[spec[0]] = (calls, loop.refused, [direct.through for direct in loop._direct])
    assert sorted(used) == ["backward", "forward"], used
    for direction, (calls, refused, through) in used.items():
        assert refused is None and calls["direct"] >= 2 and sum(calls.values()) == 3, (direction, calls, refused)
        assert through == ["inductor"], (direction, through)  # without AOT autograd's wrappers
