"""SpikingJelly adapter: converted LIFNode / ParametricLIFNode / IFNode against real, unconverted ones.

The same tests run against whichever SpikingJelly is installed: 2.0.0 in the main environment, 0.0.0.0.14 (the
``backend=`` API) in the second environment that ``.ci/run`` creates (README, "Set up"). Where the two
versions behave differently the expectation follows the installed one, and a case one version lacks is
skipped with the reason.
"""

import copy
import itertools
import pickle
import warnings
from importlib.metadata import PackageNotFoundError, version

import pytest
import torch
from torch import nn

import bsnn_lightning as bl

pytest.importorskip("spikingjelly.activation_based")
with warnings.catch_warnings():  # 0.0.0.0.14 compiles with torch.jit.script, which torch 2.13 deprecates
    warnings.simplefilter("ignore", DeprecationWarning)
    from spikingjelly.activation_based import functional, layer, neuron, surrogate  # noqa: E402

from bsnn_lightning.engine import SpikingJelly014LIF, SpikingJelly014PLIF, multistep  # noqa: E402

T, N, C, H, W = 6, 3, 4, 5, 5
#: SpikingJelly 0.0.0.0.14's API: nodes with a backend (``supported_backends``), which 2.0 dropped
SJ014 = hasattr(neuron.LIFNode, "supported_backends")
try:
    SJ_VERSION = version("spikingjelly")
except PackageNotFoundError:  # a source checkout on the path
    SJ_VERSION = "0.0.0.0.14-like" if SJ014 else "2.x"


def _node(kind, **kwargs):
    if kind == "IFNode":
        kwargs.pop("decay_input", None)
        return neuron.IFNode(**kwargs)
    if kind == "ParametricLIFNode":
        return neuron.ParametricLIFNode(init_tau=2.5, **kwargs)
    return neuron.LIFNode(tau=2.5, **kwargs)


def _inputs(seed=0, shape=(T, N, C, H, W)):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=gen) * 1.2 + 0.7, torch.randn(shape, generator=gen)


def _run(node, x, step_mode):
    x = x.clone().requires_grad_()
    functional.reset_net(node)
    if step_mode == "m":
        return x, node(x), node.v
    return x, torch.stack([node(x[t]) for t in range(x.shape[0])]), node.v


RESETS = {"hard0": dict(v_reset=0.0), "hard-0.2": dict(v_reset=-0.2), "soft": dict(v_reset=None)}


@pytest.mark.parametrize(
    "kind, step_mode, reset, detach_reset, decay_input",
    [
        (k, m, r, d, di)
        for k, m, r, d, di in itertools.product(
            ["LIFNode", "ParametricLIFNode", "IFNode"], ["s", "m"], list(RESETS), [False, True], [True, False]
        )
        if not (k == "IFNode" and not di)  # IFNode has no decay_input
    ],
    ids=str,
)
def test_converted_node_is_exact(kind, step_mode, reset, detach_reset, decay_input):
    native = _node(kind, step_mode=step_mode, detach_reset=detach_reset, decay_input=decay_input, **RESETS[reset])
    converted = bl.convert(copy.deepcopy(native), dynamics="lif", backend="torch")
    assert isinstance(converted, type(native)) and type(converted) is not type(native)
    x, grad = _inputs()

    x_n, s_n, v_n = _run(native, x, step_mode)
    (s_n * grad).sum().backward()
    x_c, s_c, v_c = _run(converted, x, step_mode)
    (s_c * grad).sum().backward()

    assert 0 < s_n.count_nonzero() < s_n.numel()
    assert torch.equal(s_c, s_n)
    assert torch.equal(v_c, v_n)
    torch.testing.assert_close(x_c.grad, x_n.grad, rtol=1e-5, atol=1e-6)
    if kind == "ParametricLIFNode":
        torch.testing.assert_close(converted.w.grad, native.w.grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "kind, step_mode, reset, dtype, decay_input",
    [
        (k, m, r, dt, di)
        for k, m, r, dt, di in itertools.product(
            ["LIFNode", "ParametricLIFNode", "IFNode"], ["s", "m"], ["hard0", "soft"], [torch.bfloat16, torch.float16],
            [True, False],
        )
        if not (k == "IFNode" and not di)  # IFNode has no decay_input
    ],
    ids=str,
)
def test_converted_node_is_exact_in_16_bit(kind, step_mode, reset, dtype, decay_input):
    # SpikingJelly (2.0 and 0.0.0.0.14) keeps the membrane in the input's dtype (full_like(x, v_reset), then
    # 16-bit arithmetic with Python-float or 0-d parameters): the converted node does the same by default.
    # decay_input=False with a reset to 0 is 0.0.0.0.14's product form v * (1 - 1/tau) + x there.
    native = _node(kind, step_mode=step_mode, decay_input=decay_input, **RESETS[reset])
    if kind == "ParametricLIFNode":
        native.w.data.fill_(-0.7)  # sigmoid(w) not a power of two: its rounding would show
    converted = bl.convert(copy.deepcopy(native), dynamics="lif", backend="torch")
    x, grad = _inputs(shape=(24, N, C, H, W))
    x, grad = x.to(dtype), grad.to(dtype)
    x_n, s_n, v_n = _run(native, x, step_mode)
    (s_n * grad).sum().backward()
    x_c, s_c, v_c = _run(converted, x, step_mode)
    (s_c * grad).sum().backward()
    assert 0 < s_n.count_nonzero() < s_n.numel()
    assert v_n.dtype == v_c.dtype == dtype and s_n.dtype == s_c.dtype
    assert torch.equal(s_c, s_n) and torch.equal(v_c, v_n)
    # gradients: the same 16-bit operations, in the reverse order of autograd's; a few roundings apart
    scale = x_n.grad.float().abs().max()
    torch.testing.assert_close(x_c.grad.float(), x_n.grad.float(), rtol=0, atol=float(scale) * 2**-5)
    # state_dtype="float32" departs from the library on purpose: a float32 membrane
    bl.convert(converted, state_dtype="float32")
    _, s_f, v_f = _run(converted, x, step_mode)
    assert v_f.dtype == torch.float32 and s_f.dtype == dtype


@pytest.mark.parametrize(
    "function, custom",
    [(surrogate.Sigmoid(alpha=3.0), False), (surrogate.ATan(alpha=1.5), False),
     (surrogate.PiecewiseQuadratic(alpha=1.2), False), (surrogate.Erf(alpha=2.0), True)],
    ids=["Sigmoid", "ATan", "PiecewiseQuadratic", "Erf(custom)"],
)
def test_surrogates_are_read_from_the_node(function, custom):
    native = neuron.LIFNode(tau=2.0, surrogate_function=function, step_mode="m")
    if custom:
        with pytest.warns(UserWarning, match="no built-in formula"):
            converted = bl.convert(copy.deepcopy(native), dynamics="lif", backend="torch")
    else:
        converted = bl.convert(copy.deepcopy(native), dynamics="lif", backend="torch")
    x, grad = _inputs(1)
    x_n, s_n, _ = _run(native, x, "m")
    (s_n * grad).sum().backward()
    x_c, s_c, _ = _run(converted, x, "m")
    (s_c * grad).sum().backward()
    assert torch.equal(s_c, s_n)
    torch.testing.assert_close(x_c.grad, x_n.grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("step_mode", ["s", "m"])
def test_store_v_seq(step_mode):
    native = neuron.LIFNode(tau=2.0, store_v_seq=True, step_mode=step_mode)
    converted = bl.convert(copy.deepcopy(native), dynamics="lif", backend="torch")
    x, _ = _inputs(2)
    _run(native, x, step_mode)
    _run(converted, x, step_mode)
    if SJ014 and step_mode == "s":  # 0.0.0.0.14 records the membranes of multi-step calls only
        assert native.v_seq is None and converted.v_seq is None
        return
    assert converted.v_seq.shape == (T, N, C, H, W)
    assert torch.equal(converted.v_seq, native.v_seq)


@pytest.mark.parametrize(
    "kind, step_mode, reset, decay_input, store_v_seq",
    [
        (k, m, r, di, sv)
        for k, m, r, di, sv in itertools.product(
            ["LIFNode", "ParametricLIFNode", "IFNode"], ["s", "m"], list(RESETS), [True, False], [False, True]
        )
        if not (k == "IFNode" and not di)
    ],
    ids=str,
)
def test_converted_node_is_exact_in_eval_mode(kind, step_mode, reset, decay_input, store_v_seq):
    # 0.0.0.0.14 runs LIF and IF in eval mode through separate scripted functions, whose hard reset with
    # decay_input=False charges in 2.0's form even where training uses the product form; 2.0 has one path
    native = _node(kind, step_mode=step_mode, decay_input=decay_input, store_v_seq=store_v_seq, **RESETS[reset])
    converted = bl.convert(copy.deepcopy(native), dynamics="lif", backend="torch")
    x, _ = _inputs(8)
    _run(converted, x, step_mode)  # a training-mode call first: switching modes must switch the arithmetic
    native.eval(), converted.eval()
    with torch.no_grad():
        _, s_n, v_n = _run(native, x, step_mode)
        _, s_c, v_c = _run(converted, x, step_mode)
    assert 0 < s_n.count_nonzero() < s_n.numel()
    assert torch.equal(s_c, s_n) and torch.equal(v_c, v_n)
    if store_v_seq and step_mode == "m":
        assert torch.equal(converted.v_seq, native.v_seq)


@pytest.mark.skipif(not SJ014, reason=f"SpikingJelly {SJ_VERSION} nodes have no backend= (0.0.0.0.14 only)")
def test_backend_attribute_is_kept_and_the_engine_runs_whatever_it_says():
    native = neuron.ParametricLIFNode(init_tau=2.5, step_mode="m", backend="torch")
    net = nn.Sequential(layer.Linear(W, W, step_mode="m"), copy.deepcopy(native))
    bl.convert(net, dynamics="lif", backend="auto")
    functional.set_backend(net, "torch", instance=neuron.ParametricLIFNode)  # SpikingJelly's setter still works
    converted = net[1]
    # what functional.set_backend(net, "cupy") leaves on a GPU with CuPy (not installed here): the converted
    # node still runs the engine, with SpikingJelly's backend='torch' results
    converted._backend = "cupy"
    x, grad = _inputs(9)
    x_n, s_n, v_n = _run(native, x, "m")
    (s_n * grad).sum().backward()
    x_c, s_c, v_c = _run(converted, x, "m")
    (s_c * grad).sum().backward()
    assert torch.equal(s_c, s_n) and torch.equal(v_c, v_n)
    torch.testing.assert_close(x_c.grad, x_n.grad, rtol=1e-5, atol=1e-6)
    assert "backend=cupy" in repr(converted)
    bl.convert(net, backend="native")  # back to SpikingJelly, which would run its CuPy kernel again
    assert type(net[1]) is neuron.ParametricLIFNode and net[1].backend == "cupy"


@pytest.mark.skipif(not SJ014, reason=f"SpikingJelly {SJ_VERSION} has no product-form charge (0.0.0.0.14 only)")
@pytest.mark.parametrize("kind", ["LIFNode", "ParametricLIFNode"])
@pytest.mark.parametrize("reset", ["hard0", "soft"])
def test_014_product_charge_runs_fused_and_exact(kind, reset):
    # the nodes that charge v * (1 - 1/tau) + x (LIF: tau a Python float, 1 - 1/tau in double) or
    # v * (1 - sigmoid(w)) + x (PLIF: a tensor) on Triton's kernels (through the interpreter on a CPU-only
    # machine), one sequence call of 20 steps (a state checkpoint at 16) against SpikingJelly's own
    pytest.importorskip("triton")
    if kind == "LIFNode":  # tau = 3: 1 - 1/3 rounded once differs from 1 - float32(1/3) rounded again
        native = neuron.LIFNode(tau=3.0, decay_input=False, step_mode="m", **RESETS[reset])
    else:
        native = neuron.ParametricLIFNode(init_tau=2.5, decay_input=False, step_mode="m", **RESETS[reset])
        native.w.data.fill_(-0.7)
    converted = bl.convert(copy.deepcopy(native), dynamics="lif", backend="triton")
    x, grad = _inputs(10, (20, N, C, H, W))
    x_n, s_n, v_n = _run(native, x, "m")
    (s_n * grad).sum().backward()
    x_c, s_c, v_c = _run(converted, x, "m")
    (s_c * grad).sum().backward()
    assert type(converted._bsnn_lif(None)[0]) is (SpikingJelly014LIF if kind == "LIFNode" else SpikingJelly014PLIF)
    assert 0 < s_n.count_nonzero() < s_n.numel()
    assert torch.equal(s_c, s_n) and torch.equal(v_c, v_n)
    torch.testing.assert_close(x_c.grad, x_n.grad, rtol=1e-5, atol=1e-6)
    if kind == "ParametricLIFNode":
        torch.testing.assert_close(converted.w.grad, native.w.grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls", [SpikingJelly014LIF, SpikingJelly014PLIF], ids=lambda c: c.__name__)
@pytest.mark.parametrize("v_reset", [0.0, None], ids=["hard0", "soft"])
def test_gradcheck_of_the_014_product_charge(cls, v_reset):
    # the hand-written backward of SpikingJelly 0.0.0.0.14's product form (engine classes; any SpikingJelly)
    dt = torch.float64
    dyn = cls(surrogate="sigmoid", relaxed=True, decay_input=False, v_reset=v_reset)
    decay = {"tau": torch.tensor(2.5, dtype=dt)} if cls is SpikingJelly014LIF else {"q": torch.tensor(0.3, dtype=dt)}
    params = {**decay, "threshold": torch.full((C,), 1.0, dtype=dt)}
    gen = torch.Generator().manual_seed(0)
    x = (torch.randn(4, 2, C, 2, generator=gen, dtype=dt) * 0.7 + 0.5).requires_grad_()
    v0 = (torch.rand(C, 2, generator=gen, dtype=dt) * 0.5).requires_grad_()
    leaves = [p.clone().requires_grad_() for p in params.values()]

    def f(x, v0, *values):
        out = multistep(x, dyn, dict(zip(params, values)), v0, return_v_seq=True)
        return out.spikes, out.v, out.v_seq

    assert torch.autograd.gradcheck(f, (x, v0, *leaves), atol=1e-7)


def _model():
    torch.manual_seed(0)
    net = nn.Sequential(
        layer.Conv2d(2, C, 3, padding=1), layer.BatchNorm2d(C), neuron.LIFNode(tau=2.0, v_reset=None),
        layer.MaxPool2d(2), layer.Flatten(), layer.Linear(C * 4 * 4, 5), neuron.ParametricLIFNode(),
    )
    functional.set_step_mode(net, "m")
    return net


def test_reset_net_tree_state_dict_and_pickle():
    native = _model()
    converted = bl.convert(copy.deepcopy(native), dynamics="lif", backend="torch")
    x, _ = _inputs(3, (T, N, 2, 8, 8))
    functional.reset_net(native)
    functional.reset_net(converted)
    assert torch.equal(converted(x), native(x))
    assert [n for n, _ in converted.named_modules()] == [n for n, _ in native.named_modules()]
    assert list(converted.state_dict()) == list(native.state_dict())
    converted.load_state_dict(native.state_dict())
    native.load_state_dict(converted.state_dict())
    assert isinstance(converted[2].v, torch.Tensor)
    functional.reset_net(converted)  # SpikingJelly's own reset (with its cached module list) still works
    assert not isinstance(converted[2].v, torch.Tensor)
    restored = pickle.loads(pickle.dumps(converted))
    assert type(restored[2]) is type(converted[2])
    functional.reset_net(restored)
    functional.reset_net(converted)
    assert torch.equal(restored(x), converted(x))


def test_step_mode_is_set_through_spikingjelly():
    net = _model()
    bl.convert(net, dynamics="lif", backend="torch", step_mode="s")
    assert net[2].step_mode == "s" and net[0].step_mode == "s"


def test_bifurcation_and_imp_train_save_restore_and_skip_weight_decay(tmp_path):
    x, _ = _inputs(4, (T, N, 2, 8, 8))
    net = bl.convert(_model(), dynamics="bifurcation", imp="neuron", backend="torch", example_input=x)
    assert net[2].imp.shape == (C, 8, 8) and net[2].eigenvalues.shape == (C,)
    assert net[6].imp.shape == (5,)
    groups = bl.neuron_param_groups(net, weight_decay=0.06)
    assert {id(net[2].imp), id(net[6].eigenvalues), id(net[6].w)} <= {id(p) for p in groups[1]["params"]}
    opt = torch.optim.Adam(groups, lr=0.05)
    before = net[2].imp.detach().clone(), net[2].eigenvalues.detach().clone()
    functional.reset_net(net)
    loss = net(x).mean()
    loss.backward()
    opt.step()
    assert not torch.equal(net[2].imp, before[0]) and not torch.equal(net[2].eigenvalues, before[1])
    torch.save(net.state_dict(), tmp_path / "ckpt.pt")
    fresh = bl.convert(_model(), dynamics="bifurcation", imp="neuron", backend="torch", example_input=x)
    fresh.load_state_dict(torch.load(tmp_path / "ckpt.pt"))
    functional.reset_net(net), functional.reset_net(fresh)
    assert torch.equal(fresh(x), net(x))


def test_without_an_example_input_the_refusal_leaves_the_nodes_native_and_an_earlier_run_gives_the_shape():
    net = _model()
    with pytest.raises(ValueError, match=r"neurons \['2', '6'\] need their input shape"):
        bl.convert(net, dynamics="bifurcation", backend="torch")
    assert type(net[2]) is neuron.LIFNode and type(net[6]) is neuron.ParametricLIFNode
    x, _ = _inputs(4, (T, N, 2, 8, 8))
    net(x)  # a native run leaves membranes [N, ...]: their shapes are the layers'
    bl.convert(net, dynamics="bifurcation", backend="torch")
    assert net[2].eigenvalues.shape == (C,) and net[6].eigenvalues.shape == (5,)


def test_imp_is_the_start_of_every_sequence():
    native = neuron.LIFNode(tau=2.0, v_reset=None, step_mode="m")
    converted = bl.convert(copy.deepcopy(native), dynamics="lif", imp="layer", backend="torch")
    x, _ = _inputs(5)
    native.v = torch.full((N, C, H, W), float(converted.imp.detach()))  # the native node started from the IMP
    expected = native(x)
    for _ in range(2):
        functional.reset_net(converted)
        assert torch.equal(converted(x), expected)


def test_unsupported_nodes_are_refused_by_name():
    net = nn.Sequential(layer.Linear(3, 3), neuron.IzhikevichNode())
    with pytest.raises(ValueError, match=r"IzhikevichNode is not supported.*backend='native'"):
        bl.convert(net, dynamics="lif", backend="torch")
    assert bl.convert(net, backend="native") is net
    with pytest.raises(ValueError, match="found no spiking neuron"):
        bl.convert(nn.Sequential(layer.Linear(3, 3)), dynamics="lif")


def test_firing_rates_are_monitored_on_library_neurons_native_or_converted():
    x, _ = _inputs(6, (T, N, 2, 8, 8))
    for backend in ("native", "torch"):
        net = bl.convert(_model(), dynamics="lif", backend=backend)
        bl.set_monitoring(net, True)
        functional.reset_net(net)
        out = net(x)
        rates = bl.firing_rates(net)
        assert set(rates) == {"2", "6"}
        assert torch.equal(rates["6"], out.float().mean())
        bl.set_monitoring(net, False)
        assert bl.firing_rates(net) == {}
