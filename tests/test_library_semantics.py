"""The engine's LIF dynamics reproduce the libraries' own neurons: real snnTorch and SpikingJelly modules.

(The adapters that convert a library's model in place are the next step; this pins down the equations.)
"""

import pytest
import torch

from bsnn_lightning.engine import SnnTorchLeaky, SnnTorchLeakyImmediate, SpikingJellyLIF, multistep

T, N, F = 8, 16, 32


def _inputs(seed):
    torch.manual_seed(seed)
    return torch.randn(T, N, F) * 0.8 + 0.3, torch.randn(T, N, F)


@pytest.mark.parametrize(
    "options",
    [dict(), dict(v_reset=None), dict(decay_input=False), dict(detach_reset=True), dict(v_reset=-0.2, detach_reset=True)],
    ids=str,
)
@pytest.mark.parametrize("surrogate", ["atan", "sigmoid"])
def test_spikingjelly_lifnode_bit_for_bit(options, surrogate):
    neuron = pytest.importorskip("spikingjelly.activation_based.neuron")
    sj_surrogate = pytest.importorskip("spikingjelly.activation_based.surrogate")
    x, grad = _inputs(0)
    lib_fn = {"atan": sj_surrogate.ATan(), "sigmoid": sj_surrogate.Sigmoid()}[surrogate]
    lif = neuron.LIFNode(tau=2.0, step_mode="m", surrogate_function=lib_fn, **options)
    x_lib = x.clone().requires_grad_()
    s_lib = lif(x_lib)
    s_lib.backward(grad)

    x_ours = x.clone().requires_grad_()
    v0 = 0.0 if options.get("v_reset", 0.0) is None else options.get("v_reset", 0.0)
    out = multistep(x_ours, SpikingJellyLIF(surrogate=surrogate, **options), {"tau": 2.0, "threshold": 1.0}, v0)
    out.spikes.backward(grad)
    assert s_lib.sum() > 0
    assert torch.equal(out.spikes, s_lib)
    assert torch.equal(out.v, lif.v)
    torch.testing.assert_close(x_ours.grad, x_lib.grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "reset, delay", [("subtract", True), ("zero", True), ("none", True), ("subtract", False), ("zero", False)]
)
def test_snntorch_leaky_loop_bit_for_bit(reset, delay):
    snn = pytest.importorskip("snntorch")
    x, grad = _inputs(1)
    beta = torch.linspace(0.5, 0.95, F)
    leaky = snn.Leaky(
        beta=beta.clone(), threshold=1.0, learn_beta=True, learn_threshold=True, reset_mechanism=reset, reset_delay=delay
    )
    x_lib = x.clone().requires_grad_()
    mem = torch.zeros(N, F)
    spikes = []
    for t in range(T):
        spk, mem = leaky(x_lib[t], mem)
        spikes.append(spk)
    s_lib = torch.stack(spikes)
    s_lib.backward(grad)

    x_ours = x.clone().requires_grad_()
    beta_ours = beta.clone().requires_grad_()
    threshold = torch.tensor(1.0, requires_grad=True)
    dynamics = (SnnTorchLeaky if delay else SnnTorchLeakyImmediate)(reset_mechanism=reset)
    out = multistep(x_ours, dynamics, {"beta": beta_ours, "threshold": threshold, "graded": 1.0}, torch.zeros(N, F))
    out.spikes.backward(grad)
    assert s_lib.sum() > 0
    assert torch.equal(out.spikes, s_lib)
    assert torch.equal(out.v, mem)
    torch.testing.assert_close(x_ours.grad, x_lib.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(beta_ours.grad, leaky.beta.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(threshold.grad, leaky.threshold.grad, rtol=1e-5, atol=1e-3)
