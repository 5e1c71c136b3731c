"""Converted neurons inside the libraries' own tooling and PyTorch's: SpikingJelly's op and energy counters and
monitors, torch's FLOP counter, inputs of every rank the native neurons take, and torch.compile."""

import copy

import pytest
import torch

import bsnn_lightning as bl
from bsnn_lightning.engine import checks

sj = pytest.importorskip("spikingjelly.activation_based")
snn = pytest.importorskip("snntorch")
from snntorch import utils as snn_utils  # noqa: E402
from spikingjelly.activation_based import functional, monitor, neuron  # noqa: E402
from spikingjelly.activation_based import op_counter as oc  # noqa: E402

from bsnn_lightning.models import SpikingJellyConvNet  # noqa: E402

SHAPE = dict(in_channels=2, num_classes=10, channels=(4, 8), hidden=16, input_size=(16, 16))


def _sj_net(step_mode="m"):
    torch.manual_seed(0)
    net = SpikingJellyConvNet(**SHAPE).eval()
    functional.set_step_mode(net, step_mode)
    return net


def _frames(step_mode):
    torch.manual_seed(1)
    x = torch.rand(4, 3, 2, 16, 16) * 1.5
    return x if step_mode == "m" else x[0]


def _counts(net, x, counters, strict):
    functional.reset_net(net)
    with torch.no_grad(), oc.DispatchCounterMode(counters, strict=strict) as mode:
        net.net(x)  # the layers themselves: one step [N, ...] in step mode "s", [T, N, ...] in "m"
    return [c.get_total() for c in counters], [mode.get_unsupported(c) for c in counters]


@pytest.mark.parametrize("step_mode", ["s", "m"])
def test_spikingjelly_counters_count_a_converted_model_as_the_native_one(step_mode):
    native = _sj_net(step_mode)
    converted = bl.convert(copy.deepcopy(native), dynamics="lif", backend="torch")
    x = _frames(step_mode)
    # strict: every operation must have a rule, as for the native model (these three counters have one for all)
    strict = lambda: [oc.FlopCounter(), oc.MemoryAccessCounter(), oc.NeuronStateCounter()]  # noqa: E731
    native_counts, _ = _counts(native, x, strict(), strict=True)
    converted_counts, unsupported = _counts(converted, x, strict(), strict=True)
    assert converted_counts == native_counts and all(n > 0 for n in native_counts)
    assert unsupported == [{}, {}, {}]
    # and the counters that skip operations without a rule
    loose = lambda: [oc.ACCounter(), oc.MACCounter(), oc.SynOpCounter()]  # noqa: E731
    assert _counts(converted, x, loose(), strict=False) == _counts(native, x, loose(), strict=False)


def test_the_finite_check_adds_nothing_to_a_count():
    # bifurcation dynamics run on the engine under a counter; the value check must not be counted
    def counts(check_finite):
        net = _sj_net()
        torch.manual_seed(2)  # the same eigenvalues for both conversions
        bl.convert(net, "bifurcation", backend="torch", check_finite=check_finite, example_input=_frames("m"))
        return _counts(net, _frames("m"), [oc.FlopCounter(), oc.ACCounter(), oc.MemoryAccessCounter()], strict=False)

    checks.clear()
    assert counts("sync") == counts("off") == counts("defer")
    checks.clear()


def test_torch_flop_counter_counts_a_converted_snntorch_model_as_the_native_one():
    from torch.utils.flop_counter import FlopCounterMode

    def make():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(8, 6), snn.Leaky(beta=0.8, init_hidden=True), torch.nn.Linear(6, 3))

    def flops(net):
        snn_utils.reset(net)
        torch.manual_seed(1)
        with FlopCounterMode(display=False) as counter:
            sum(net(torch.rand(4, 8)).sum() for t in range(5)).backward()
        return counter.get_flop_counts()

    native, converted = make(), bl.convert(make(), backend="torch")
    assert flops(converted) == flops(native)


def test_spikingjelly_monitors_see_the_same_spikes_and_membranes():
    native = _sj_net()
    converted = bl.convert(copy.deepcopy(native), backend="torch")
    x = _frames("m")
    recorded = []
    for net in (native, converted):
        spikes = monitor.OutputMonitor(net, type(net.net[2]))
        potentials = monitor.AttributeMonitor("v", pre_forward=False, net=net, instance=type(net.net[2]))
        functional.reset_net(net)
        with torch.no_grad():
            net(x)
        recorded.append((spikes.records, potentials.records))
        spikes.remove_hooks(), potentials.remove_hooks()
    (s_n, v_n), (s_c, v_c) = recorded
    assert len(s_n) == len(s_c) == 3 and all(torch.equal(a, b) for a, b in zip(s_n, s_c))  # 3 LIF layers
    assert len(v_n) == len(v_c) == 3 and all(torch.equal(a, b) for a, b in zip(v_n, v_c))


@pytest.mark.parametrize("kind", ["LIFNode", "ParametricLIFNode", "IFNode"])
@pytest.mark.parametrize("step_mode, shape", [("s", ()), ("m", (7,))], ids=["0-d step", "1-d sequence"])
def test_spikingjelly_inputs_of_low_rank_convert(kind, step_mode, shape):
    native = getattr(neuron, kind)(step_mode=step_mode, store_v_seq=True)
    converted = bl.convert(copy.deepcopy(native), backend="torch")
    torch.manual_seed(0)
    inputs = [torch.rand(shape) * 2 for _ in range(3)]

    def run(node):
        functional.reset_net(node)
        return torch.stack([node(x) for x in inputs]), node.v

    (s_n, v_n), (s_c, v_c) = run(native), run(converted)
    assert 0 < s_n.sum() < s_n.numel()
    assert s_c.shape == s_n.shape and torch.equal(s_c, s_n)
    assert v_c.shape == v_n.shape == () and torch.equal(v_c, v_n)
    if step_mode == "m":
        assert torch.equal(converted.v_seq, native.v_seq)


@pytest.mark.parametrize("init_hidden", [False, True])
def test_snntorch_zero_dimensional_inputs_convert(init_hidden):
    native = snn.Leaky(beta=0.8, init_hidden=init_hidden)
    converted = bl.convert(copy.deepcopy(native), backend="torch")
    torch.manual_seed(0)
    inputs = [torch.rand(()) * 1.5 for _ in range(6)]

    def run(lif):
        if init_hidden:
            lif.reset_mem()
            return torch.stack([lif(x) for x in inputs]), lif.mem
        mem, spikes = lif.init_leaky(), []
        for x in inputs:
            spk, mem = lif(x, mem)
            spikes.append(spk)
        return torch.stack(spikes), mem

    (s_n, m_n), (s_c, m_c) = run(native), run(converted)
    assert 0 < s_n.sum() < s_n.numel()
    assert torch.equal(s_c, s_n) and m_c.shape == m_n.shape == () and torch.equal(m_c, m_n)


# --- torch.compile: one graph from the first call on ----------------------------------------------------------


def _snntorch_loop(lif, x):
    mem, spikes = lif.init_leaky(), []
    for t in range(x.shape[0]):
        spk, mem = lif(x[t], mem)
        spikes.append(spk)
    return torch.stack(spikes)


def _sequence_call(module, x):
    bl.reset_states(module)
    return module(x)


COMPILED = {
    "own LIF": (lambda: bl.LIFNeuron(tau=2.0), _sequence_call, {}),
    "own bifurcation": (lambda: bl.BifurcationNeuron(shape=(8,)), _sequence_call, {}),
    "snntorch per step": (lambda: snn.Leaky(beta=0.8), _snntorch_loop, {}),
    # shaped parameters made at conversion: the loop's calls find them and change nothing, so one graph
    "snntorch per step, bifurcation + IMP": (
        lambda: snn.Leaky(beta=0.8), _snntorch_loop,
        {"dynamics": "bifurcation", "imp": "neuron", "example_input": torch.zeros(3, 8)},
    ),
    "snntorch sequence": (lambda: snn.Leaky(beta=0.8, init_hidden=True), _sequence_call, {"step_mode": "m"}),
    "spikingjelly LIF": (lambda: neuron.LIFNode(step_mode="m"), _sequence_call, {}),
    "spikingjelly PLIF": (lambda: neuron.ParametricLIFNode(step_mode="m"), _sequence_call, {}),
}


def _compiled_matches_eager(name, backend, converted):
    make, call, convert_kw = COMPILED[name]
    torch._dynamo.reset()
    eager, compiled_module = make(), None
    if converted:
        bl.convert(eager, backend="torch", **convert_kw)
    compiled_module = copy.deepcopy(eager)
    torch.manual_seed(0)
    x = torch.rand(6, 3, 8) * 1.5
    grad = torch.randn(6, 3, 8)
    xe, xc = x.clone().requires_grad_(), x.clone().requires_grad_()
    spikes = call(eager, xe)
    compiled = torch.compile(call, fullgraph=True, backend=backend)  # any graph break raises
    spikes_c = compiled(compiled_module, xc)
    assert 0 < spikes.sum() < spikes.numel()
    assert torch.equal(spikes_c, spikes)
    (spikes * grad).sum().backward()
    (spikes_c * grad).sum().backward()
    torch.testing.assert_close(xc.grad, xe.grad, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("converted", [False, True], ids=["native", "converted"])
@pytest.mark.parametrize("name", list(COMPILED))
def test_compiled_without_graph_breaks_aot_eager(name, converted):
    if not converted and (name.startswith("own") or "bifurcation" in name):
        pytest.skip("no native form (this package's neurons, bifurcation dynamics): the converted case covers them")
    _compiled_matches_eager(name, "aot_eager", converted)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["own bifurcation", "snntorch per step", "snntorch per step, bifurcation + IMP", "spikingjelly LIF"])
def test_compiled_without_graph_breaks_inductor(name):
    _compiled_matches_eager(name, "inductor", converted=True)
