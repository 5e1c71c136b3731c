"""The Triton kernels' 16-bit states and their two rounding rules (PyTorch's CPU and CUDA), against references.

A library that keeps its membrane in the input's 16-bit dtype (SpikingJelly's LIF, PLIF and IF; snnTorch's
membrane without a reset term) runs on the kernels with that state: spikes, v and v_seq equal the reference
backend's bit for bit, into NaN-filled buffers (``poisoned_triton_outputs``), gradients to rounding. The CPU
rule is the reference backend's (it runs here); the CUDA rule (forced under the interpreter) equals
``rounding_rules.run(..., "cuda")``, PyTorch's CUDA arithmetic written in torch ops, which in turn must equal the
reference backend under the CPU rule, so its structure is the reference's.
"""

import zlib
from dataclasses import replace

import pytest
import torch

triton = pytest.importorskip("triton")

from bsnn_lightning.engine import (  # noqa: E402
    SnnTorchLeaky,
    SnnTorchLeakyImmediate,
    SnnTorchSynapticZero,
    SpikingJellyIF,
    SpikingJellyLIF,
    SpikingJellyPLIF,
    multistep,
    resolve_backend,
)
from bsnn_lightning.engine import triton_backend  # noqa: E402
import triton.language as tl  # noqa: E402
import rounding_rules  # noqa: E402  (tests/rounding_rules.py)
from triton_exactness import assert_matches_reference  # noqa: E402

if not triton_backend._interpreted(triton_backend._kernels()):
    pytest.skip("the rounding rules are checked under Triton's interpreter (a GPU runs its own rule)", allow_module_level=True)

from bsnn_lightning.engine.triton_kernels import _round  # noqa: E402  (the kernels' rounding, called by _round_kernel)

pytestmark = [
    pytest.mark.filterwarnings("ignore::RuntimeWarning"),  # numpy's overflow notes in the interpreter
    pytest.mark.usefixtures("poisoned_triton_outputs"),
]

C, H, W = 3, 5, 7
LOW = [torch.float16, torch.bfloat16]


def _generator(*key) -> torch.Generator:
    return torch.Generator().manual_seed(zlib.crc32(repr(key).encode()))


def _scalar(value):
    return ("tensor", value)


#: (dynamics, params, initial state): every reset, every surrogate, every initial-state layout; taus that are not
#: powers of two; thresholds and v_reset that are not 16-bit numbers; 0-d float32 tensors (PLIF's q, snnTorch's
#: buffers) and Python floats; a per-channel threshold in the input's dtype
CASES16 = {
    "sj-lif-hard-sigmoid": (SpikingJellyLIF(), {"tau": 2.7, "threshold": 1.0}, "neuron"),
    "sj-lif-soft-nodecay-atan": (
        SpikingJellyLIF(v_reset=None, decay_input=False, surrogate="atan"), {"tau": 3.3, "threshold": 0.7}, "full"
    ),
    "sj-lif-vreset-detach-triangle": (
        SpikingJellyLIF(v_reset=-0.1, detach_reset=True, surrogate="triangle"), {"tau": 1.7, "threshold": 1.0}, "channel"
    ),
    "sj-lif-channel-threshold": (SpikingJellyLIF(surrogate="fast_sigmoid"), {"tau": 2.3, "threshold": "channel"}, "layer"),
    "sj-plif-hard-fast-sigmoid": (SpikingJellyPLIF(surrogate="fast_sigmoid"), {"q": _scalar(0.37), "threshold": 1.0}, "layer"),
    "sj-plif-soft-nodecay": (
        SpikingJellyPLIF(v_reset=None, decay_input=False, detach_reset=True), {"q": _scalar(0.41), "threshold": 0.9}, None
    ),
    "sj-if-soft": (SpikingJellyIF(v_reset=None), {"threshold": 1.0}, "full"),
    "sj-if-hard-tensor-threshold": (SpikingJellyIF(v_reset=0.3), {"threshold": _scalar(0.95)}, "neuron"),
    "snntorch-none-sigmoid": (
        SnnTorchLeaky(reset_mechanism="none", surrogate="sigmoid"),
        {"beta": _scalar(0.83), "threshold": _scalar(1.1), "graded": _scalar(1.3)},
        None,
    ),
    "snntorch-synaptic-zero-atan": (
        SnnTorchSynapticZero(), {"beta": _scalar(0.9), "threshold": _scalar(1.05), "graded": _scalar(1.0)}, "channel"
    ),
}

#: float32 states where the two rules differ (a Python-float divisor) or could (tensor divisors)
CASES32 = {
    "sj-lif-float-tau": (SpikingJellyLIF(), {"tau": 2.7, "threshold": 1.0}, "neuron"),
    "sj-lif-nodecay-channel-tau": (SpikingJellyLIF(decay_input=False), {"tau": "channel", "threshold": 0.8}, None),
    "sj-plif-soft": (SpikingJellyPLIF(v_reset=None), {"q": _scalar(0.37), "threshold": 1.0}, "full"),
    "snntorch-immediate-float-graded": (
        SnnTorchLeakyImmediate(surrogate="triangle"), {"beta": 0.8, "threshold": 1.0, "graded": 1.7}, "layer"
    ),
    "snntorch-subtract": (SnnTorchLeaky(), {"beta": _scalar(0.9), "threshold": _scalar(1.0), "graded": _scalar(1.0)}, None),
}


def _case(cases, name, dtype, key):
    dynamics, specs, v0_kind = cases[name]
    if dtype in LOW:
        dynamics = replace(dynamics, state_dtype=dtype)
    g = _generator("params", name, str(dtype), *key)
    params = {}
    for k, spec in specs.items():
        if spec == "channel":  # tau in [1.5, 4], a threshold in [0.8, 1.2], in the input's dtype
            low, high = (1.5, 4.0) if k == "tau" else (0.8, 1.2)
            params[k] = (torch.rand(C, generator=g) * (high - low) + low).to(dtype)
        elif isinstance(spec, tuple):
            params[k] = torch.tensor(spec[1])
        else:
            params[k] = spec
    v0 = None
    if v0_kind is not None:
        shape = {"layer": (), "channel": (C,), "neuron": (C, H, W), "full": (2, C, H, W)}[v0_kind]
        v0 = torch.rand(shape, generator=g) * 0.8
    x = (torch.randn((key[0], 2, C, H, W), generator=_generator("x", name, str(dtype), *key)) * 0.7 + 0.45).to(dtype)
    return dynamics, params, v0, x


def _run(backend, dynamics, x, params, v0, upstream):
    """Outputs and gradients of one backend, or (backend "rule:cuda") of ``rounding_rules.run``."""
    leaves = {"x": x.detach().clone().requires_grad_()}
    for name, value in [("v0", v0), *params.items()]:
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            leaves[name] = value.detach().clone().requires_grad_()
    values = {name: leaves.get(name, value) for name, value in params.items()}
    if backend.startswith("rule:"):
        out = rounding_rules.run(backend[5:], leaves["x"], dynamics, values, leaves.get("v0", v0))
    else:
        out = multistep(leaves["x"], dynamics, values, leaves.get("v0", v0), backend=backend, return_v_seq=True)
    torch.autograd.backward(list(out), upstream)
    return [o.detach() for o in out], {n: leaf.grad for n, leaf in leaves.items()}


def _upstream(x, dtype, key):
    g = _generator("grads", *key)
    state = dtype if dtype in LOW else torch.float32
    return [
        torch.randn(x.shape, generator=g).to(x.dtype),
        torch.randn(x.shape[1:], generator=g).to(state),
        torch.randn(x.shape, generator=g).to(state),
    ]


def _check(cases, name, dtype, steps, rule, monkeypatch):
    """The kernels under ``rule`` against the reference backend (CPU rule) or ``rounding_rules`` (CUDA rule)."""
    key = (steps, rule)
    dynamics, params, v0, x = _case(cases, name, dtype, key)
    upstream = _upstream(x, dtype, (name, str(dtype), *key))
    ref_out, ref_grads = _run("torch" if rule == "cpu" else "rule:cuda", dynamics, x, params, v0, upstream)
    assert steps == 1 or ref_out[0].float().sum() > 0, "the case should spike, or the reset path goes untested"
    monkeypatch.setattr(triton_backend, "ROUNDING_RULE", rule)
    out, grads = _run("triton", dynamics, x, params, v0, upstream)
    if dtype in LOW:
        assert out[1].dtype == dtype and out[2].dtype == dtype  # the library's 16-bit membrane
    assert_matches_reference(out, ref_out, grads, ref_grads)


@pytest.mark.parametrize(
    "name, dtype, steps, rule",
    [("sj-lif-hard-sigmoid", torch.float16, 17, "cpu"),  # a checkpoint in the library's dtype, a ragged chunk
     ("snntorch-none-sigmoid", torch.bfloat16, 6, "cpu"), ("sj-plif-hard-fast-sigmoid", torch.bfloat16, 6, "cuda")],
)  # fmt: skip
def test_16_bit_states(name, dtype, steps, rule, monkeypatch):
    """A few cases in the fast set; every case, length and rule below (slow)."""
    _check(CASES16, name, dtype, steps, rule, monkeypatch)


def test_float32_state_cuda_rule(monkeypatch):
    """A Python-float tau: on CUDA a multiply by its float32 reciprocal."""
    _check(CASES32, "sj-lif-float-tau", torch.float32, 6, "cuda", monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("rule", ["cpu", "cuda"])
@pytest.mark.parametrize("steps", [1, 6, 33])
@pytest.mark.parametrize("dtype", LOW)
@pytest.mark.parametrize("name", list(CASES16))
def test_every_16_bit_case(name, dtype, steps, rule, monkeypatch):
    _check(CASES16, name, dtype, steps, rule, monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("rule", ["cpu", "cuda"])
@pytest.mark.parametrize("name", list(CASES32))
def test_every_float32_case(name, rule, monkeypatch):
    _check(CASES32, name, torch.float32, 19, rule, monkeypatch)


@pytest.mark.parametrize(
    "cases, name, dtype",
    [(CASES16, n, d) for n in CASES16 for d in LOW] + [(CASES32, n, torch.float32) for n in CASES32],
)
def test_the_cpu_rule_is_the_reference(cases, name, dtype):
    """``rounding_rules`` under the CPU rule equals the reference backend bit for bit: its op order and operand
    casts are the reference's, so its CUDA rule differs from the reference only where the devices differ."""
    dynamics, params, v0, x = _case(cases, name, dtype, (9, "cpu-rule"))
    ref = multistep(x, dynamics, params, v0, backend="torch", return_v_seq=True)
    with torch.no_grad():
        got_all = rounding_rules.run("cpu", x, dynamics, params, v0)
    for got, want in zip(got_all, ref):
        assert got.dtype == want.dtype and torch.equal(got, want)


@pytest.mark.parametrize(
    "cases, name, dtype",
    [(CASES32, "sj-lif-float-tau", torch.float32), (CASES16, "sj-plif-hard-fast-sigmoid", torch.float16),
     (CASES16, "sj-lif-vreset-detach-triangle", torch.bfloat16)],
)  # fmt: skip
def test_the_rules_differ(cases, name, dtype):
    """Where the rules differ the states differ somewhere (so the CUDA-mode tests can fail)."""
    dynamics, params, v0, x = _case(cases, name, dtype, (24, "differ"))
    with torch.no_grad():
        cpu = rounding_rules.run("cpu", x, dynamics, params, v0)
        cuda = rounding_rules.run("cuda", x, dynamics, params, v0)
    assert not torch.equal(cpu[2], cuda[2])


def test_what_a_16_bit_state_is_refused_for():
    """A 16-bit state the kernels do not keep is refused with the reason (``"auto"`` then runs ``"torch"``); a
    dimensioned float32 parameter, which would promote the library's membrane, is a clear error."""
    x = torch.rand(3, 2, C).half()
    refused = [
        (replace(SnnTorchLeaky(), state_dtype=torch.float16), "snnTorch's membrane without a reset term"),
        (SpikingJellyLIF(state_dtype=torch.bfloat16), "a 16-bit one in the input's own dtype"),
    ]
    for dynamics, reason in refused:
        assert reason in triton_backend.supports(x, dynamics)
        with pytest.raises(ValueError, match="backend 'triton' cannot run this call"):
            resolve_backend("triton", x, dynamics)
    assert resolve_backend("triton", x, SpikingJellyLIF(state_dtype=torch.float16)).name == "triton"
    with pytest.raises(ValueError, match="promotes the state"):
        multistep(x, SpikingJellyLIF(state_dtype=torch.float16), {"tau": torch.full((C,), 2.0), "threshold": 1.0}, backend="triton")


@triton.jit
def _round_kernel(x_ptr, out_ptr, n, ROUND: tl.constexpr, BLOCK: tl.constexpr):
    offsets = tl.arange(0, BLOCK)
    mask = offsets < n
    tl.store(out_ptr + offsets, _round(tl.load(x_ptr + offsets, mask=mask, other=0.0), ROUND), mask=mask)


@pytest.mark.parametrize("dtype", LOW)
def test_the_kernels_rounding_is_torchs(dtype):
    """``_round`` against torch's float32 -> 16-bit conversion, bit for bit, on random bit patterns (NaN, inf,
    float32 subnormals, fp16 subnormals and overflow included) and on ties."""
    g = _generator("round", str(dtype))
    bits = torch.randint(-(2**31), 2**31 - 1, (1 << 14,), generator=g, dtype=torch.int32)
    wide = torch.randn(1 << 14, generator=g) * torch.exp(torch.randn(1 << 14, generator=g) * 6)
    ties = torch.tensor([65504.0, 65519.0, 65520.0, -65520.0, 2**-25, 3 * 2**-26, 1.5 * 2**-24, 1 + 2**-8, 1 + 3 * 2**-8,
                         1 + 2**-11, 1 + 3 * 2**-11, float("inf"), float("nan"), -0.0])  # fmt: skip
    x = torch.cat([bits.view(torch.float32), wide, ties])
    out = torch.empty_like(x)
    _round_kernel[(1,)](x, out, x.numel(), ROUND=triton_backend._ROUNDING[dtype], BLOCK=triton.next_power_of_2(x.numel()))
    want = x.to(dtype).float()
    same = (out == want) | (out.isnan() & want.isnan())
    assert bool(same.all()), x[~same][:5]
    assert bool(((torch.signbit(out) == torch.signbit(want)) | want.isnan()).all())


def _native_16_bit_cases():
    cases = []
    for kind in ("LIFNode", "ParametricLIFNode", "IFNode"):
        for step_mode in ("s", "m"):
            for reset in ("hard0", "soft", "hard-0.1"):
                for dtype in LOW:
                    for decay_input in (True, False):
                        if kind == "IFNode" and not decay_input:
                            continue
                        fast = (kind, step_mode, reset, decay_input) == ("LIFNode", "m", "hard0", True)
                        marks = () if fast and dtype == torch.float16 else (pytest.mark.slow,)
                        cases.append(pytest.param(kind, step_mode, reset, dtype, decay_input, marks=marks))
    return cases


@pytest.mark.parametrize("kind, step_mode, reset, dtype, decay_input", _native_16_bit_cases())
def test_native_spikingjelly_16_bit_on_the_kernels(kind, step_mode, reset, dtype, decay_input):
    """SpikingJelly's own nodes under 16-bit input (their membrane in the input's dtype) against the same nodes
    converted to the triton backend: spikes and membranes bit for bit, both step modes, every reset, decay_input
    both ways, a tau and a sigmoid(w) that are not powers of two."""
    neuron = pytest.importorskip("spikingjelly.activation_based.neuron")
    import copy

    import bsnn_lightning as bl

    v_reset = {"hard0": 0.0, "soft": None, "hard-0.1": -0.1}[reset]
    options = dict(v_reset=v_reset, step_mode=step_mode)
    if kind == "LIFNode":
        native = neuron.LIFNode(tau=2.7, decay_input=decay_input, **options)
    elif kind == "ParametricLIFNode":
        native = neuron.ParametricLIFNode(init_tau=2.7, decay_input=decay_input, **options)
        native.w.data.fill_(-0.7)
    else:
        native = neuron.IFNode(**options)
    converted = bl.convert(copy.deepcopy(native), dynamics="lif", backend="triton")
    g = _generator("native", kind, step_mode, reset, str(dtype), decay_input)
    x = (torch.randn((9, 2, C, H, W), generator=g) * 0.7 + 0.45).to(dtype)
    outputs = []
    for node in (native, converted):
        bl.reset_states(node)
        if step_mode == "m":
            spikes = node(x)
        else:
            spikes = torch.stack([node(x[t]) for t in range(x.shape[0])])
        outputs.append((spikes, node.v))
    (s_n, v_n), (s_c, v_c) = outputs
    assert 0 < s_n.count_nonzero() < s_n.numel()
    assert v_n.dtype == v_c.dtype == dtype
    assert torch.equal(s_c, s_n) and torch.equal(v_c, v_n)
