"""snnTorch ``Synaptic`` and ``RLeaky`` converted in place, against real, unconverted snnTorch modules.

With ``dynamics="lif"`` and no IMP: spikes, synaptic currents and membranes bit for bit, every gradient (input,
alpha, beta, threshold, the recurrent weights) within rtol 1e-5 in float32, over reset mechanism x
``reset_delay`` x calling style x learnable or fixed rates. The IMP and bifurcation dynamics are checked by
their values: the IMP is the membrane a sequence starts from, the eigenvalues replace beta's decay of the
membrane, the synaptic current keeps alpha.
"""

import copy
import itertools

import pytest
import torch
from torch import nn

import bsnn_lightning as bl

snn = pytest.importorskip("snntorch")
from snntorch import surrogate, utils  # noqa: E402

T, N, F = 6, 4, 10
STYLES = {"explicit": {}, "hidden": {"init_hidden": True}, "hidden+output": {"init_hidden": True, "output": True}}
CASES = list(itertools.product(["subtract", "zero", "none"], [True, False], list(STYLES)))


def _inputs(seed=0, shape=(T, N, F)):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=gen) * 1.3 + 0.6, torch.randn(shape, generator=gen)


def _synaptic(learn=True, **kwargs):
    if learn:  # per-neuron rates, all learnable
        rates = dict(alpha=torch.linspace(0.4, 0.9, F), beta=torch.linspace(0.3, 0.95, F), learn_alpha=True,
                     learn_beta=True, learn_threshold=True)
    else:
        rates = dict(alpha=0.7, beta=0.8)
    return snn.Synaptic(**rates, **kwargs)


def _rleaky(recurrent="linear", learn=True, **kwargs):
    torch.manual_seed(0)  # the recurrent weights
    shape = {"linear": dict(linear_features=F), "one-to-one": dict(all_to_all=False, V=torch.linspace(-0.6, 0.6, F)),
             "conv": dict(conv2d_channels=2, kernel_size=3)}[recurrent]
    rates = dict(beta=torch.linspace(0.3, 0.95, F) if recurrent != "conv" else 0.8, learn_beta=True,
                 learn_threshold=True) if learn else dict(beta=0.8, learn_recurrent=False)
    return snn.RLeaky(**rates, **shape, **kwargs)


def _run_synaptic(neuron, x, style):
    """The user's own time loop; spikes, synaptic currents and membranes of every step."""
    x = x.clone().requires_grad_()
    out = []
    if style == "explicit":
        syn, mem = neuron.reset_mem()
        for t in range(x.shape[0]):
            spk, syn, mem = neuron(x[t], syn, mem)
            out.append((spk, syn, mem))
    else:
        neuron.reset_mem()
        for t in range(x.shape[0]):
            got = neuron(x[t])
            out.append(got if style == "hidden+output" else (got, neuron.syn, neuron.mem))
    return (x, *(torch.stack(seq) for seq in zip(*out)))


def _run_rleaky(neuron, x, style):
    x = x.clone().requires_grad_()
    out = []
    if style == "explicit":
        spk, mem = neuron.reset_mem()
        for t in range(x.shape[0]):
            spk, mem = neuron(x[t], spk, mem)
            out.append((spk, mem))
    else:
        neuron.reset_mem()
        for t in range(x.shape[0]):
            got = neuron(x[t])
            out.append(got if style == "hidden+output" else (got, neuron.mem))
    return (x, *(torch.stack(seq) for seq in zip(*out)))


def _grads(module, x):
    return [x.grad] + [p.grad for p in module.parameters()]


def _assert_same_gradients(converted, x_c, native, x_n):
    names = ["input"] + [n for n, _ in native.named_parameters()]
    got, expected = _grads(converted, x_c), _grads(native, x_n)
    assert len(got) == len(expected) and all(g is not None for g in expected)
    for name, g_c, g_n in zip(names, got, expected):
        torch.testing.assert_close(g_c, g_n, rtol=1e-5, atol=1e-5, msg=name)


# --- Synaptic: exact ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("learn", [True, False], ids=["learnable", "fixed"])
@pytest.mark.parametrize("reset, delay, style", CASES, ids=lambda v: str(v))
def test_converted_synaptic_is_exact(reset, delay, style, learn):
    native = _synaptic(learn, reset_mechanism=reset, reset_delay=delay, **STYLES[style])
    converted = bl.convert(copy.deepcopy(native), dynamics="lif", backend="torch")
    assert isinstance(converted, snn.Synaptic) and type(converted) is not snn.Synaptic
    x, grad = _inputs()
    x_n, s_n, syn_n, m_n = _run_synaptic(native, x, style)
    x_c, s_c, syn_c, m_c = _run_synaptic(converted, x, style)
    (s_n * grad + m_n * grad.flip(0)).sum().backward()
    (s_c * grad + m_c * grad.flip(0)).sum().backward()

    assert 0 < s_n.count_nonzero() < s_n.numel()
    assert torch.equal(s_c, s_n) and torch.equal(syn_c, syn_n) and torch.equal(m_c, m_n)
    if learn:
        _assert_same_gradients(converted, x_c, native, x_n)
    else:
        torch.testing.assert_close(x_c.grad, x_n.grad, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "reset, delay, dtype",
    list(itertools.product(["subtract", "zero"], [True, False], [torch.bfloat16, torch.float16])),
    ids=lambda v: str(v),
)
def test_converted_synaptic_is_exact_with_16_bit_inputs(reset, delay, dtype):
    # per-neuron float32 rates: snnTorch's synaptic current and membrane are float32, and so are the converted's
    native = _synaptic(reset_mechanism=reset, reset_delay=delay)
    converted = bl.convert(copy.deepcopy(native), dynamics="lif", backend="torch")
    x, grad = _inputs()
    x, grad = x.to(dtype), grad.to(dtype)
    x_n, s_n, syn_n, m_n = _run_synaptic(native, x, "explicit")
    x_c, s_c, syn_c, m_c = _run_synaptic(converted, x, "explicit")
    (s_n * grad).sum().backward()
    (s_c * grad).sum().backward()
    assert 0 < s_n.count_nonzero() < s_n.numel()
    assert m_n.dtype == m_c.dtype == syn_c.dtype == torch.float32
    assert torch.equal(s_c, s_n) and torch.equal(syn_c, syn_n) and torch.equal(m_c, m_n)
    for g_c, g_n in zip(_grads(converted, x_c), _grads(native, x_n)):
        torch.testing.assert_close(g_c.float(), g_n.float(), rtol=1e-2, atol=1e-2)


def test_synaptic_zero_resets_the_charged_membrane_unlike_leaky():
    # the case the engine's own class exists for: after a spike Synaptic's membrane is 0, input and all
    native = snn.Synaptic(alpha=0.5, beta=0.5, reset_mechanism="zero", init_hidden=True, output=True)
    converted = bl.convert(copy.deepcopy(native), dynamics="lif", backend="torch")
    x = torch.tensor([[3.0], [2.0], [0.5]])
    for neuron in (native, converted):
        neuron.reset_mem()
        mems = [neuron(x_t)[2].item() for x_t in x]
        # syn = 3, 3.5, 2.25; mem1 = 3 (spike); r2 = 1: mem2 = 0 (Leaky's zero would give 3.5)
        assert mems == [3.0, 0.0, 2.25]


@pytest.mark.parametrize("reset, delay", [("subtract", True), ("zero", False)])
def test_synaptic_per_neuron_rates_broadcast_over_a_conv_layer(reset, delay):
    native = snn.Synaptic(alpha=torch.linspace(0.4, 0.9, 5), beta=torch.linspace(0.5, 0.9, 5), learn_alpha=True,
                          learn_beta=True, reset_mechanism=reset, reset_delay=delay)
    converted = bl.convert(copy.deepcopy(native), dynamics="lif", backend="torch")
    x, grad = _inputs(2, (T, N, 3, 4, 5))
    x_n, s_n, syn_n, m_n = _run_synaptic(native, x, "explicit")
    x_c, s_c, syn_c, m_c = _run_synaptic(converted, x, "explicit")
    (s_n * grad).sum().backward()
    (s_c * grad).sum().backward()
    assert torch.equal(s_c, s_n) and torch.equal(m_c, m_n)
    _assert_same_gradients(converted, x_c, native, x_n)


@pytest.mark.parametrize(
    "spike_grad, custom",
    [(surrogate.fast_sigmoid(slope=10), False), (surrogate.sigmoid(slope=5), False), (surrogate.triangular(), True)],
    ids=["fast_sigmoid10", "sigmoid5", "triangular(custom)"],
)
def test_synaptic_surrogates_are_read_from_the_module(spike_grad, custom):
    native = _synaptic(spike_grad=spike_grad)
    if custom:
        with pytest.warns(UserWarning, match="no built-in formula"):
            converted = bl.convert(copy.deepcopy(native), dynamics="lif", backend="torch")
    else:
        converted = bl.convert(copy.deepcopy(native), dynamics="lif", backend="torch")
    x, grad = _inputs(1)
    x_n, s_n, _, _ = _run_synaptic(native, x, "explicit")
    x_c, s_c, _, _ = _run_synaptic(converted, x, "explicit")
    (s_n * grad).sum().backward()
    (s_c * grad).sum().backward()
    assert torch.equal(s_c, s_n)
    _assert_same_gradients(converted, x_c, native, x_n)


# --- RLeaky: exact --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("recurrent", ["linear", "one-to-one"])
@pytest.mark.parametrize("reset, delay, style", CASES, ids=lambda v: str(v))
def test_converted_rleaky_is_exact(reset, delay, style, recurrent):
    native = _rleaky(recurrent, reset_mechanism=reset, reset_delay=delay, **STYLES[style])
    converted = bl.convert(copy.deepcopy(native), dynamics="lif", backend="torch")
    assert isinstance(converted, snn.RLeaky) and type(converted) is not snn.RLeaky
    x, grad = _inputs()
    x_n, s_n, m_n = _run_rleaky(native, x, style)
    x_c, s_c, m_c = _run_rleaky(converted, x, style)
    (s_n * grad + m_n * grad.flip(0)).sum().backward()
    (s_c * grad + m_c * grad.flip(0)).sum().backward()
    assert 0 < s_n.count_nonzero() < s_n.numel()
    assert torch.equal(s_c, s_n) and torch.equal(m_c, m_n)
    _assert_same_gradients(converted, x_c, native, x_n)  # the recurrent weights (or V) among them


@pytest.mark.parametrize("learn", [True, False], ids=["learnable", "fixed"])
def test_converted_conv_rleaky_is_exact(learn):
    native = _rleaky("conv", learn, reset_mechanism="subtract")
    converted = bl.convert(copy.deepcopy(native), dynamics="lif", backend="torch")
    x, grad = _inputs(3, (T, N, 2, 5, 5))
    x_n, s_n, m_n = _run_rleaky(native, x, "explicit")
    x_c, s_c, m_c = _run_rleaky(converted, x, "explicit")
    (s_n * grad).sum().backward()
    (s_c * grad).sum().backward()
    assert 0 < s_n.count_nonzero() and torch.equal(s_c, s_n) and torch.equal(m_c, m_n)
    if learn:
        _assert_same_gradients(converted, x_c, native, x_n)
    else:
        assert not any(p.requires_grad for p in converted.recurrent.parameters())
        torch.testing.assert_close(x_c.grad, x_n.grad, rtol=1e-5, atol=1e-5)


def test_rleaky_keeps_its_recurrent_module_and_state_dict_keys():
    native = _rleaky("linear")
    recurrent = native.recurrent
    keys = list(native.state_dict())
    bl.convert(native, dynamics="lif", backend="torch")
    assert native.recurrent is recurrent and type(recurrent) is nn.Linear
    assert list(native.state_dict()) == keys and "recurrent.weight" in keys
    one_to_one = bl.convert(_rleaky("one-to-one"), dynamics="lif", backend="torch")
    assert {"V", "recurrent.V"} <= set(one_to_one.state_dict())
    # the one-to-one weight's module lives in snnTorch's neuron package but is no neuron
    net = nn.Sequential(nn.Linear(3, F), one_to_one)
    assert [name for name, _, _ in bl.spiking_neurons(net)] == ["1"]


# --- step mode "m": the whole sequence per call ---------------------------------------------------------------


def _sequential(kind, **kwargs):
    torch.manual_seed(0)
    neuron = {"synaptic": lambda **k: snn.Synaptic(alpha=0.6, beta=0.8, **k),
              "rleaky": lambda **k: snn.RLeaky(beta=0.8, linear_features=F, **k)}[kind]
    return nn.Sequential(nn.Linear(5, F), neuron(init_hidden=True, **kwargs), nn.Linear(F, F),
                         neuron(init_hidden=True, output=True, **kwargs))


@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("kind", ["synaptic", "rleaky"])
def test_sequence_mode_equals_the_per_step_loop(kind, reset):
    native = _sequential(kind, reset_mechanism=reset)
    converted = bl.convert(copy.deepcopy(native), dynamics="lif", backend="torch", step_mode="m")
    x, _ = _inputs(4, (T, N, 5))
    bl.reset_states(native)
    steps = [native(x[t]) for t in range(T)]
    s_n, m_n = torch.stack([o[0] for o in steps]), torch.stack([o[-1] for o in steps])
    (s_n.sum() + m_n.sum()).backward()
    bl.reset_states(converted)
    out = converted(x)  # one call: Synaptic filters the whole sequence, then one engine call
    s_c, m_c = out[0], out[-1]
    (s_c.sum() + m_c.sum()).backward()
    # the linear layers see [T * N, ...] at once, which the matrix product may round differently from N rows
    # per step (the neurons alone are bit for bit in sequence mode: the next test)
    assert s_c.shape == (T, N, F) and torch.equal(s_c, s_n)
    torch.testing.assert_close(m_c, m_n, rtol=1e-5, atol=1e-6)
    if kind == "synaptic":
        torch.testing.assert_close(out[1], torch.stack([o[1] for o in steps]), rtol=1e-5, atol=1e-6)
    for (name, p_c), p_n in zip(converted.named_parameters(), native.parameters()):
        torch.testing.assert_close(p_c.grad, p_n.grad, rtol=1e-4, atol=1e-5, msg=name)
    bl.convert(converted, step_mode="s")  # and back to one step per call
    bl.reset_states(converted)
    assert torch.equal(converted(x[0])[0], s_n[0])


@pytest.mark.parametrize("style", ["explicit", "hidden+output"])
@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("kind", ["synaptic", "rleaky"])
def test_a_neuron_in_sequence_mode_is_exact(kind, reset, style):
    native = (_synaptic if kind == "synaptic" else _rleaky)(reset_mechanism=reset, **STYLES[style])
    converted = bl.convert(copy.deepcopy(native), dynamics="lif", backend="torch", step_mode="m")
    x, grad = _inputs(5)
    run = _run_synaptic if kind == "synaptic" else _run_rleaky
    x_n, *expected = run(native, x, style)
    (expected[0] * grad + expected[-1]).sum().backward()
    x_c = x.clone().requires_grad_()
    states = converted.reset_mem()
    got = converted(x_c, *states) if style == "explicit" else converted(x_c)  # the sequences of every state
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g.shape == (T, N, F) and torch.equal(g, e)
    (got[0] * grad + got[-1]).sum().backward()
    _assert_same_gradients(converted, x_c, native, x_n)


# --- the methods: IMP and bifurcation dynamics, by their values -------------------------------------------------


@pytest.mark.parametrize("style", ["explicit", "hidden"])
def test_synaptic_imp_is_the_membrane_a_sequence_starts_from(style):
    native = _synaptic(reset_mechanism="subtract", **STYLES[style])
    converted = bl.convert(copy.deepcopy(native), dynamics="lif", imp="neuron", backend="torch",
                           example_input=torch.zeros(N, F))
    imp = converted.imp.detach().clone()
    assert imp.shape == (F,) and ((imp >= 0.4) & (imp <= 0.6)).all()
    x, grad = _inputs(6)
    # native, started from mem = IMP and syn = 0, with the IMP as a leaf to compare its gradient
    reference = native if style == "explicit" else _explicit(native)
    mem0 = imp.clone().requires_grad_()
    syn, mem = torch.zeros(N, F), mem0.expand(N, F)
    expected = []
    for t in range(T):
        spk, syn, mem = reference(x[t], syn, mem)
        expected.append((spk, syn, mem))
    s_n, syn_n, m_n = (torch.stack(v) for v in zip(*expected))
    (s_n * grad + m_n).sum().backward()
    for _ in range(2):  # every sequence starts there again after reset_mem()
        converted.zero_grad()
        _, s_c, syn_c, m_c = _run_synaptic(converted, x, style)
        assert torch.equal(s_c, s_n) and torch.equal(syn_c, syn_n) and torch.equal(m_c, m_n)
        (s_c * grad + m_c).sum().backward()
        torch.testing.assert_close(converted.imp.grad, mem0.grad, rtol=1e-5, atol=1e-5)


def _explicit(neuron):
    """The same snnTorch module, in explicit-state style (to feed it a starting membrane)."""
    twin = copy.deepcopy(neuron)
    twin.init_hidden = False
    return twin


def test_rleaky_imp_is_the_membrane_a_sequence_starts_from():
    native = _rleaky("linear", reset_mechanism="zero")
    converted = bl.convert(copy.deepcopy(native), dynamics="lif", imp="layer", backend="torch")
    imp = float(converted.imp.detach())
    x, _ = _inputs(7)
    spk, mem = torch.zeros(N, F), torch.full((N, F), imp)
    expected = []
    for t in range(T):
        spk, mem = native(x[t], spk, mem)
        expected.append((spk, mem))
    s_n, m_n = (torch.stack(v) for v in zip(*expected))
    for _ in range(2):
        _, s_c, m_c = _run_rleaky(converted, x, "explicit")
        assert torch.equal(s_c, s_n) and torch.equal(m_c, m_n)
    # a detached copy of the membrane continues the sequence (truncated BPTT), it does not restart it
    spk, mem = converted.reset_mem()
    spk, mem = converted(x[0], spk, mem)
    spk, mem = converted(x[1], spk.detach(), mem.detach())
    assert torch.equal(mem, m_n[1])


def _bifurcation_reference(x, alpha, eigenvalues, threshold, reset, recurrent=None):
    """The stated meaning, written out: the synaptic current (if alpha) keeps snnTorch's filter; the membrane
    charges with (1 + lambda) in place of beta; the recurrent current (if any) is added to the input; spike
    when h >= threshold, then a soft ("subtract") or hard-to-0 ("zero") reset of the membrane that fired."""
    syn = torch.zeros_like(x[0])
    mem = torch.zeros_like(x[0])
    spk = torch.zeros_like(x[0])
    spikes, mems = [], []
    for x_t in x:
        if alpha is not None:
            syn = alpha * syn + x_t
            drive = syn
        else:
            drive = x_t + recurrent(spk)
        h = (1 + eigenvalues) * mem + drive
        spk = (h >= threshold).to(h.dtype)
        mem = h - spk * threshold if reset == "subtract" else (1 - spk) * h
        spikes.append(spk)
        mems.append(mem)
    return torch.stack(spikes), torch.stack(mems)


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_synaptic_bifurcation_replaces_beta_on_the_membrane_and_keeps_alpha(reset):
    native = snn.Synaptic(alpha=0.6, beta=0.3, reset_mechanism=reset, init_hidden=True, output=True)
    converted = bl.convert(copy.deepcopy(native), dynamics="bifurcation", granularity="neuron", backend="torch",
                           example_input=torch.zeros(N, F))
    lam = converted.eigenvalues.detach()
    assert lam.shape == (F,) and lam.min() < -0.5 and lam.max() > -0.3  # a spread, not beta's single rate
    x, _ = _inputs(8)
    converted.reset_mem()
    steps = [converted(x_t) for x_t in x]
    spikes, mems = torch.stack([s[0] for s in steps]), torch.stack([s[2] for s in steps])
    ref_spikes, ref_mems = _bifurcation_reference(x, 0.6, lam, 1.0, reset)
    assert 0 < spikes.count_nonzero() < spikes.numel()
    assert torch.equal(spikes, ref_spikes)
    torch.testing.assert_close(mems, ref_mems, rtol=1e-6, atol=1e-6)
    syn, syn_ref = torch.stack([s[1] for s in steps]), [x[0]]
    for x_t in x[1:]:
        syn_ref.append(0.6 * syn_ref[-1] + x_t)
    assert torch.equal(syn, torch.stack(syn_ref))  # the synaptic current: alpha's filter, as snnTorch's
    # beta no longer enters; alpha does
    converted.beta.fill_(0.9)
    converted.reset_mem()
    assert torch.equal(torch.stack([converted(x_t)[0] for x_t in x]), spikes)
    converted.alpha.fill_(0.1)
    converted.reset_mem()
    assert not torch.equal(torch.stack([converted(x_t)[0] for x_t in x]), spikes)


def test_rleaky_bifurcation_adds_the_recurrent_current_to_the_input():
    native = _rleaky("linear", learn=False, reset_mechanism="subtract", init_hidden=True, output=True)
    converted = bl.convert(copy.deepcopy(native), dynamics="bifurcation", imp="neuron", backend="torch",
                           example_input=torch.zeros(N, F))
    with torch.no_grad():
        converted.imp.zero_()  # the start is the IMP; at 0 it is the reference's start
    lam = converted.eigenvalues.detach()
    x, _ = _inputs(9)
    converted.reset_mem()
    steps = [converted(x_t) for x_t in x]
    spikes, mems = torch.stack([s[0] for s in steps]), torch.stack([s[1] for s in steps])
    ref_spikes, ref_mems = _bifurcation_reference(x, None, lam, 1.0, "subtract", recurrent=native.recurrent)
    assert 0 < spikes.count_nonzero() < spikes.numel()
    assert torch.equal(spikes, ref_spikes)
    torch.testing.assert_close(mems, ref_mems, rtol=1e-6, atol=1e-6)
    # and the gradient reaches the eigenvalues, the IMP and the recurrent weights through the recurrent path
    converted.recurrent.weight.requires_grad_(True)
    converted.reset_mem()
    torch.stack([converted(x_t)[1] for x_t in x]).square().sum().backward()
    for p in (converted.eigenvalues, converted.imp, converted.recurrent.weight):
        assert p.grad is not None and p.grad.abs().sum() > 0


def test_bifurcation_and_imp_parameters_save_and_restore(tmp_path):
    net = _sequential("synaptic")
    bl.convert(net, dynamics="bifurcation", imp="channel", backend="torch", step_mode="m",
               example_input=torch.randn(T, N, 5))
    assert {"1.imp", "1.eigenvalues", "3.imp", "3.eigenvalues"} <= set(dict(net.named_parameters()))
    path = tmp_path / "ckpt.pt"
    torch.save(net.state_dict(), path)
    torch.manual_seed(1)  # other initial values, replaced by the checkpoint's
    fresh = bl.convert(_sequential("synaptic"), dynamics="bifurcation", imp="channel", backend="torch", step_mode="m",
                       example_input=torch.randn(T, N, 5))
    fresh.load_state_dict(torch.load(path))
    for name, p in net.state_dict().items():
        assert torch.equal(fresh.state_dict()[name], p), name
    x, _ = _inputs(10, (T, N, 5))
    bl.reset_states(net), bl.reset_states(fresh)
    assert torch.equal(fresh(x)[0], net(x)[0])


# --- the library's own tools, checkpoints, pickling, native round trip ----------------------------------------


@pytest.mark.parametrize("kind", ["synaptic", "rleaky"])
def test_snntorch_reset_utilities_reset_converted_neurons(kind):
    net = bl.convert(_sequential(kind), dynamics="lif", backend="torch")  # in place: in snnTorch's instance list
    x, _ = _inputs(11, (T, N, 5))
    utils.reset(net)
    first = torch.stack([net(x[t])[0] for t in range(T)])
    assert net[1].mem.abs().sum() > 0
    utils.reset(net)  # snnTorch's own utility: reset_hidden and detach_hidden over the class-level instance list
    assert net[1].mem.abs().sum() == 0
    again = torch.stack([net(x[t])[0] for t in range(T)])
    assert torch.equal(first, again)
    states = net[1].init_synaptic() if kind == "synaptic" else net[1].init_rleaky()  # the deprecated names too
    assert all(s.abs().sum() == 0 for s in states)


@pytest.mark.parametrize("kind", ["synaptic", "rleaky"])
def test_checkpoints_copies_and_the_native_round_trip(kind):
    native = _sequential(kind)
    converted = bl.convert(copy.deepcopy(native), dynamics="lif", backend="torch")
    assert list(converted.state_dict()) == list(native.state_dict())
    converted.load_state_dict(native.state_dict())  # a native checkpoint loads into a converted model
    native.load_state_dict(converted.state_dict())  # and back
    x, _ = _inputs(12, (T, N, 5))

    def run(net):
        bl.reset_states(net)
        return torch.stack([net(x[t])[0] for t in range(T)])

    expected = run(native)
    # (snnTorch's default surrogate is a local function, so its neurons do not pickle; a deep copy goes through
    # the same __reduce_ex__, which rebuilds the class made at run time)
    clone = copy.deepcopy(converted)
    assert type(clone[1]) is type(converted[1]) and isinstance(clone[1], bl.neuron_params.MethodNeuron)
    assert torch.equal(run(clone), expected) and torch.equal(run(converted), expected)
    bl.convert(converted, backend="native")
    assert type(converted[1]) is type(native[1]) and torch.equal(run(converted), expected)
    bl.convert(converted, imp="layer", backend="torch")
    with pytest.raises(ValueError, match="added parameters"):
        bl.convert(converted, backend="native")


@pytest.mark.parametrize("kind", ["synaptic", "rleaky"])
def test_monitors_record_spikes_and_membranes(kind):
    net = bl.convert(_sequential(kind), dynamics="lif", backend="torch", step_mode="m")
    bl.set_monitoring(net, True, membrane=True)
    x, _ = _inputs(13, (T, N, 5))
    bl.reset_states(net)
    out = net(x)
    rec = bl.recordings(net)
    assert set(rec) == {"1", "3"}
    assert torch.equal(rec["3"].spikes, out[0]) and torch.equal(rec["3"].membrane, out[-1]) and rec["3"].sequence


@pytest.mark.parametrize("kind", ["synaptic", "rleaky"])
def test_op_counters_count_the_library_code(kind):
    from torch.utils.flop_counter import FlopCounterMode

    def flops(net):
        bl.reset_states(net)
        torch.manual_seed(1)
        with FlopCounterMode(display=False) as counter:
            sum(net(torch.rand(N, 5))[0].sum() for t in range(4)).backward()
        return counter.get_flop_counts()

    native = _sequential(kind)
    assert flops(bl.convert(copy.deepcopy(native), backend="torch")) == flops(native)


def test_zero_dimensional_input_converts_like_native():
    native = snn.Synaptic(alpha=0.6, beta=0.8, init_hidden=True, output=True)
    converted = bl.convert(copy.deepcopy(native), dynamics="lif", backend="torch")
    x = torch.tensor([1.5, 0.2, 0.9, 0.0])
    for neuron in (native, converted):
        neuron.reset_mem()
    for x_t in x:
        got, expected = converted(x_t), native(x_t)
        assert all(g.shape == () and torch.equal(g, e) for g, e in zip(got, expected))


def _synaptic_sequence(neuron, x):
    bl.reset_states(neuron)
    return neuron(x)


def _state_loop(neuron, x):
    states, spikes = neuron.reset_mem(), []
    for x_t in x:
        spk, *states = neuron(x_t, *states)
        spikes.append(spk)
    return torch.stack(spikes)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    ["synaptic sequence", "synaptic zero per step", "rleaky per step", "synaptic per step, coupled + IMP",
     "rleaky per step, bifurcation + IMP"],
)
def test_compiled_without_graph_breaks(name):
    # with shaped parameters (IMP, eigenvalues) made at conversion, a loop of per-step calls is one graph too
    shaped = {"dynamics": "bifurcation", "imp": "neuron", "example_input": torch.zeros(3, 8)}
    make, call, kw = {
        "synaptic sequence": (lambda: snn.Synaptic(alpha=0.6, beta=0.8, init_hidden=True), _synaptic_sequence,
                              {"step_mode": "m"}),
        "synaptic zero per step": (lambda: snn.Synaptic(alpha=0.6, beta=0.8, reset_mechanism="zero"), _state_loop, {}),
        "rleaky per step": (lambda: snn.RLeaky(beta=0.8, linear_features=8), _state_loop, {}),
        "synaptic per step, coupled + IMP": (lambda: snn.Synaptic(alpha=0.6, beta=0.8), _state_loop,
                                             dict(shaped, structure="coupled")),
        "rleaky per step, bifurcation + IMP": (lambda: snn.RLeaky(beta=0.8, linear_features=8), _state_loop, shaped),
    }[name]
    torch._dynamo.reset()
    torch.manual_seed(0)
    eager = bl.convert(make(), backend="torch", **kw)
    twin = copy.deepcopy(eager)
    x = torch.rand(6, 3, 8) * 1.5
    x_e, x_c = x.clone().requires_grad_(), x.clone().requires_grad_()
    spikes = call(eager, x_e)
    spikes_c = torch.compile(call, fullgraph=True, backend="aot_eager")(twin, x_c)  # any graph break raises
    assert 0 < spikes.sum() < spikes.numel() and torch.equal(spikes_c, spikes)
    spikes.sum().backward()
    spikes_c.sum().backward()
    torch.testing.assert_close(x_c.grad, x_e.grad, rtol=1e-4, atol=1e-5)


# --- the Triton backend -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reset, delay", [("subtract", True), ("none", True), ("zero", True), ("zero", False)])
def test_synaptic_membranes_run_fused(reset, delay):
    # Synaptic's membranes run on Triton's kernels (through the interpreter on a CPU-only machine):
    # SnnTorchLeaky on the synaptic current for subtract and none (SnnTorchLeakyImmediate for reset_delay=False,
    # as Leaky's: tests/test_adapter_snntorch.py), SnnTorchSynapticZero / SnnTorchSynapticZeroImmediate for
    # zero; one sequence call of 20 steps (a state checkpoint at 16) against snnTorch's own per-step loop
    pytest.importorskip("triton")
    native = _synaptic(reset_mechanism=reset, reset_delay=delay, init_hidden=True, output=True)
    converted = bl.convert(copy.deepcopy(native), dynamics="lif", backend="triton", step_mode="m")
    x, grad = _inputs(14, (20, N, F))
    x_n, s_n, syn_n, m_n = _run_synaptic(native, x, "hidden+output")
    (s_n * grad + m_n * grad.flip(0)).sum().backward()
    x_c = x.clone().requires_grad_()
    converted.reset_mem()
    s_c, syn_c, m_c = converted(x_c)
    (s_c * grad + m_c * grad.flip(0)).sum().backward()
    assert 0 < s_n.count_nonzero() < s_n.numel()
    assert torch.equal(s_c, s_n) and torch.equal(syn_c, syn_n) and torch.equal(m_c, m_n)
    for (name, g_c), g_n in zip([("input", x_c.grad)] + [(n, p.grad) for n, p in converted.named_parameters()],
                                _grads(native, x_n)):
        torch.testing.assert_close(g_c, g_n, rtol=2e-5, atol=1e-5, msg=name)


def test_what_triton_does_not_run_says_why():
    with pytest.raises(ValueError, match=r"RLeaky with dynamics='lif' runs snnTorch's own step.*triton"):
        bl.convert(nn.Sequential(_rleaky()), dynamics="lif", backend="triton")


def test_rleaky_bifurcation_steps_run_fused():
    pytest.importorskip("triton")
    torch.manual_seed(3)
    net = bl.convert(_rleaky("linear", init_hidden=True), dynamics="bifurcation", backend="torch",
                     example_input=torch.zeros(N, F))
    x, _ = _inputs(15)

    def run():
        net.reset_mem()
        return torch.stack([net(x_t) for x_t in x])

    reference = run()
    bl.convert(net, backend="triton")
    assert 0 < reference.count_nonzero() and torch.equal(run(), reference)


# --- what is refused ----------------------------------------------------------------------------------------


def test_alpha_and_the_other_neurons_are_refused_by_name():
    with pytest.raises(ValueError, match=r"snntorch\.Alpha is not supported.*no state of its own.*backend='native'"):
        bl.convert(nn.Sequential(snn.Alpha(alpha=0.9, beta=0.8)), dynamics="lif", backend="torch")
    with pytest.raises(ValueError, match=r"snntorch\.Lapicque is not supported.*snntorch\.Synaptic, snntorch\.RLeaky"):
        bl.convert(nn.Sequential(snn.Lapicque(beta=0.9)), dynamics="lif", backend="torch")
    with pytest.raises(ValueError, match=r"snntorch\.RSynaptic is not supported"):
        bl.convert(nn.Sequential(snn.RSynaptic(alpha=0.9, beta=0.8, linear_features=3)), backend="torch")


def test_unsupported_options_are_refused_by_name():
    with pytest.raises(ValueError, match=r"snntorch\.Synaptic with inhibition"):
        bl.convert(nn.Sequential(snn.Synaptic(alpha=0.9, beta=0.8, inhibition=True)), backend="torch")
    with pytest.raises(ValueError, match=r"a RLeaky with reset_mechanism='none'"):
        bl.convert(nn.Sequential(_rleaky(reset_mechanism="none")), dynamics="bifurcation", backend="torch")
    with pytest.raises(TypeError, match="init_hidden"):
        bl.convert(_synaptic(init_hidden=True), backend="torch")(torch.rand(N, F), torch.zeros(N, F))
