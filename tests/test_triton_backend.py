"""The triton backend's surroundings: which calls it takes, its reasons for the others, the custom op under
``torch.compile``, the package without triton, and the kernels compiled for GPU targets without a GPU."""

import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

triton = pytest.importorskip("triton")

from bsnn_lightning.engine import (  # noqa: E402
    SnnTorchLeaky,
    SnnTorchLeakyImmediate,
    SnnTorchSynapticZero,
    SnnTorchSynapticZeroImmediate,
    SpikingJelly014LIF,
    SpikingJelly014PLIF,
    SpikingJellyIF,
    SpikingJellyLIF,
    available_backends,
    multistep,
    resolve_backend,
    surrogates,
)
from bsnn_lightning.engine import triton_backend  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
RUNS_HERE = DEVICE == "cuda" or triton_backend._interpreted(triton_backend._kernels())
needs_kernels = pytest.mark.skipif(not RUNS_HERE, reason="no CUDA GPU and Triton's interpreter is off")
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

LIF = {"tau": 2.0, "threshold": 1.0}


def test_registered():
    assert "triton" in available_backends()


@needs_kernels
def test_explicit_triton_runs_here():
    x = torch.rand(3, 2, 5, device=DEVICE)
    assert resolve_backend("triton", x, SpikingJellyLIF()).name == "triton"


def test_auto_picks_triton_only_for_cuda_tensors():
    x = torch.rand(3, 2, 5)
    assert resolve_backend("auto", x, SpikingJellyLIF()).name == "torch"  # even with the interpreter on
    if torch.cuda.is_available():
        assert resolve_backend("auto", x.cuda(), SpikingJellyLIF()).name == "triton"


@dataclass(frozen=True)
class _OwnLIF(SpikingJellyLIF):
    """A user's own dynamics class: a subclass changes the equations, so it is not fused as its base."""


@pytest.mark.parametrize(
    "dynamics, params, reason",
    [
        (_OwnLIF(), LIF, "the triton backend fuses \\[.*'CoupledBifurcation'.*\\], got _OwnLIF"),
        (SpikingJellyLIF(relaxed=True), LIF, "relaxed dynamics"),
    ],
    ids=["own-class", "relaxed"],
)
def test_what_it_does_not_fuse_falls_back_under_auto_and_is_refused_by_name(dynamics, params, reason):
    x = torch.rand(3, 2, 17, device=DEVICE)
    assert re.search(reason, triton_backend.supports(x, dynamics))
    assert resolve_backend("auto", x, dynamics).name == "torch"
    with pytest.raises(ValueError, match=f"backend 'triton' cannot run this call: .*{reason}"):
        multistep(x, dynamics, params, backend="triton")


SNNTORCH = {"beta": 0.9, "threshold": 1.0, "graded": 1.0}


@needs_kernels
@pytest.mark.parametrize(
    "dynamics, params",
    [
        (SnnTorchLeakyImmediate(), SNNTORCH),
        (SnnTorchLeakyImmediate(reset_mechanism="zero"), SNNTORCH),
        (SnnTorchSynapticZero(), SNNTORCH),
        (SnnTorchSynapticZeroImmediate(), SNNTORCH),
        (SpikingJelly014LIF(decay_input=False), LIF),
        (SpikingJelly014PLIF(decay_input=False, v_reset=None), {"q": torch.tensor(0.4), "threshold": 1.0}),
    ],
    ids=["leaky-immediate-subtract", "leaky-immediate-zero", "synaptic-zero", "synaptic-zero-immediate", "sj014-lif",
         "sj014-plif"],
)
def test_immediate_synaptic_zero_and_014_classes_are_fused(dynamics, params):
    """Refused before issue 12; now supported, chosen by name, and run (tests/test_triton_kernels.py checks
    their values)."""
    x = torch.rand(3, 2, 5, device=DEVICE) * 2
    assert triton_backend.supports(x, dynamics) is None
    assert resolve_backend("triton", x, dynamics).name == "triton"
    out = multistep(x, dynamics, params, backend="triton")
    ref = multistep(x, dynamics, params, backend="torch")
    assert torch.equal(out.spikes, ref.spikes) and torch.equal(out.v, ref.v)


def test_user_registered_surrogates_are_refused(monkeypatch):
    bump = (lambda z, a: 1 / (1 + (a * z).square()), lambda z, a: torch.sigmoid(a * z), 1.0)
    monkeypatch.setitem(surrogates._REGISTRY, "bump", bump)
    x = torch.rand(3, 2, 5)
    assert "surrogate 'bump' is user-registered" in triton_backend.supports(x, SpikingJellyLIF(surrogate="bump"))
    monkeypatch.setitem(surrogates._REGISTRY, "atan", bump)  # a built-in name, replaced
    assert "surrogate 'atan' is user-registered" in triton_backend.supports(x, SpikingJellyLIF(surrogate="atan"))


def test_float64_is_refused_with_the_dtypes_it_takes():
    reason = triton_backend.supports(torch.rand(3, 2, dtype=torch.float64), SpikingJellyIF())
    assert reason.startswith("expected x of dtype float32, bfloat16 or float16, got torch.float64")


def test_cpu_tensors_without_the_interpreter_get_a_reason(monkeypatch):
    monkeypatch.setattr(triton_backend, "_interpreted", lambda kernels: False)
    reason = triton_backend.supports(torch.rand(3, 2), SpikingJellyLIF())
    assert "x is on the CPU" in reason and "TRITON_INTERPRET=1" in reason


def test_without_triton_installed_the_reason_names_the_extra(monkeypatch):
    def missing():
        raise ImportError("No module named 'triton'")

    monkeypatch.setattr(triton_backend, "_kernels", missing)
    reason = triton_backend.supports(torch.rand(3, 2), SpikingJellyLIF())
    assert "triton is not installed" in reason and "bsnn-lightning[triton]" in reason


@pytest.mark.slow
def test_the_package_imports_and_runs_without_triton():
    code = """
        import sys
        sys.modules["triton"] = None  # as if triton were not installed
        import torch
        import bsnn_lightning
        from bsnn_lightning.engine import SpikingJellyLIF, multistep
        out = multistep(torch.rand(3, 2, 4), SpikingJellyLIF(), {"tau": 2.0, "threshold": 1.0})
        assert out.spikes.shape == (3, 2, 4)
        try:
            multistep(torch.rand(3, 2, 4), SpikingJellyLIF(), {"tau": 2.0, "threshold": 1.0}, backend="triton")
        except ValueError as error:
            assert "triton is not installed" in str(error), error
        else:
            raise AssertionError("expected a ValueError")
    """
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.slow
@needs_kernels
def test_custom_op_passes_opcheck():
    config = triton_backend._Config.of(SnnTorchLeaky(reset_mechanism="zero"))
    x = torch.randn(5, 2, 3, 4, device=DEVICE, requires_grad=True)
    beta = torch.full((3, 1), 0.8, device=DEVICE, requires_grad=True)  # per channel, as multistep views it
    threshold = torch.ones((), device=DEVICE, requires_grad=True)
    graded = torch.ones(3, 4, device=DEVICE, requires_grad=True)
    v0 = torch.rand(2, 3, 4, device=DEVICE, requires_grad=True)
    args = (x, v0, beta, threshold, graded, *config, True, True)
    torch.library.opcheck(torch.ops.bsnn.triton_multistep.default, args)


@pytest.mark.slow
@needs_kernels
def test_torch_compile_fullgraph_has_no_graph_break_in_the_neuron():
    """aot_eager traces forward and backward through the fake implementations (no C++ compiler needed)."""
    torch._dynamo.reset()
    x = torch.randn(6, 3, 4, 5, device=DEVICE, requires_grad=True)
    threshold = torch.full((4,), 1.0, device=DEVICE, requires_grad=True)
    imp = torch.rand(4, 5, device=DEVICE, requires_grad=True)

    def step(x, threshold, imp):
        out = multistep(x * 2.0, SpikingJellyLIF(), {"tau": 2.0, "threshold": threshold}, imp, backend="triton", check_finite=False)
        return out.spikes.sum() + (out.v * out.v).sum()

    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    compiled(x, threshold, imp).backward()
    got = [t.grad.clone() for t in (x, threshold, imp)]
    for t in (x, threshold, imp):
        t.grad = None
    step(x, threshold, imp).backward()
    for a, t in zip(got, (x, threshold, imp)):
        torch.testing.assert_close(a, t.grad)


ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_kernels_compile_for_sm90_and_sm80_without_spills_or_memory_round_trips():
    """What the interpreter cannot show: that the GPU compiler accepts the kernels, and what it makes of them.
    A representative set (``bench/kernels_static.py --set check``: the heaviest forward and backward, with
    every option, 16-bit x, v_seq and checkpoints; another dynamics in fp16; a layer of 105 neurons; snnTorch's
    immediate reset, whose backward keeps one more register tile, SpikingJelly 0.0.0.0.14's product form, the
    16-bit-state kernels (SpikingJelly's LIF, PLIF and IF and snnTorch's membrane without a reset term, every op
    rounded to fp16 or bf16, under PyTorch's CUDA rule) and the coupled bifurcation with every option at 16, 32
    and 64 channels, its state staged through the scratch) is
    specialised through the real launcher and compiled for Hopper (sm_90) and Ampere (sm_80) on the CPU;
    a compile error, a register spill, local memory or shared memory (a layout round trip) fails it.
    About a minute of CPU on 2 cores."""
    if "nvidia" not in triton.backends.backends:
        pytest.skip("this triton build has no NVIDIA backend")
    if not hasattr(getattr(triton, "knobs", None), "runtime"):
        pytest.skip("the compile-request hook this check uses needs a newer Triton (triton.knobs)")
    command = [sys.executable, str(ROOT / "bench" / "kernels_static.py"), "--set", "check", "--arch", "90", "80",
               "--repo", str(ROOT)]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0 and "kernels_static: PASS" in result.stdout, (
        result.stdout[-6000:] + result.stderr[-4000:]
    )
