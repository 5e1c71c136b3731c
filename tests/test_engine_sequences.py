"""The reference engine against sequences worked out by hand, for every dynamics and reset mode."""

import pytest
import torch

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


def run(dynamics, params, xs, v0=None):
    """One neuron, one sample: xs is a list over time."""
    x = torch.tensor(xs, dtype=torch.float32).reshape(len(xs), 1, 1)
    out = multistep(x, dynamics, params, v0, return_v_seq=True)
    return out.spikes.flatten().tolist(), out.v_seq.flatten().tolist(), out.v.flatten().tolist()


LIF = {"tau": 2.0, "threshold": 1.0}


def test_spikingjelly_lif_hard_reset_decay_input():
    # h1 = 0 + (1.5 - 0)/2 = 0.75; h2 = 0.75 + (0 - 0.75)/2 = 0.375; h3 = 0.375 + (2.5 - 0.375)/2 = 1.4375 -> spike, v = 0
    spikes, v_seq, v = run(SpikingJellyLIF(), LIF, [1.5, 0.0, 2.5])
    assert spikes == [0.0, 0.0, 1.0]
    assert v_seq == [0.75, 0.375, 0.0]
    assert v == [0.0]


def test_spikingjelly_lif_soft_reset():
    # h1 = 2.5/2 = 1.25 -> spike, v = 0.25; h2 = 0.25 - 0.25/2 = 0.125; h3 = 0.125 + (1 - 0.125)/2 = 0.5625
    spikes, v_seq, _ = run(SpikingJellyLIF(v_reset=None), LIF, [2.5, 0.0, 1.0])
    assert spikes == [1.0, 0.0, 0.0]
    assert v_seq == [0.25, 0.125, 0.5625]


def test_spikingjelly_lif_without_decay_input_fires_at_equality():
    # h = v - v/2 + x: h1 = 0.5; h2 = 0.5 - 0.25 + 0.75 = 1.0 (>= threshold: spike); h3 = 0 + 0.125
    spikes, v_seq, _ = run(SpikingJellyLIF(decay_input=False), LIF, [0.5, 0.75, 0.125])
    assert spikes == [0.0, 1.0, 0.0]
    assert v_seq == [0.5, 0.0, 0.125]


def test_spikingjelly_lif_nonzero_v_reset_is_the_resting_state():
    # starts at v_reset = -0.5: h1 = -0.5 + (3 - (-0.5 + 0.5))/2 = 1.0 -> spike, v = -0.5; h2 = -0.5 + (0 - 0)/2
    spikes, v_seq, _ = run(SpikingJellyLIF(v_reset=-0.5), LIF, [3.0, 0.0])
    assert spikes == [1.0, 0.0]
    assert v_seq == [-0.5, -0.5]


def test_snntorch_leaky_subtract_resets_one_step_later():
    # u1 = 1.5 (> 1: spike); u2 = 0.5 * 1.5 + 0 - 1 = -0.25 (reset decided from u1); u3 = -0.125 + 0.5 = 0.375
    spikes, v_seq, _ = run(SnnTorchLeaky(), {"beta": 0.5, "threshold": 1.0, "graded": 1.0}, [1.5, 0.0, 0.5])
    assert spikes == [1.0, 0.0, 0.0]
    assert v_seq == [1.5, -0.25, 0.375]


def test_snntorch_leaky_zero_and_none():
    params = {"beta": 0.5, "threshold": 1.0, "graded": 1.0}
    # zero: u2 = 0.5 * ((1 - 1) * 1.5) + 0.25 = 0.25
    assert run(SnnTorchLeaky(reset_mechanism="zero"), params, [1.5, 0.25])[1] == [1.5, 0.25]
    # none: u2 = 0.75 + 0.25 = 1.0, not strictly above the threshold: no spike
    spikes, v_seq, _ = run(SnnTorchLeaky(reset_mechanism="none"), params, [1.5, 0.25])
    assert spikes == [1.0, 0.0] and v_seq == [1.5, 1.0]


def test_snntorch_leaky_immediate_resets_at_once_and_avoids_a_double_reset():
    params = {"beta": 0.5, "threshold": 1.0, "graded": 1.0}
    # u1 = 1.5 - (1 - 0) * 1 = 0.5 at once; u2 = 0.25 (r2 = H(0.5 - 1) = 0); u3 = 0.125 + 0.5 = 0.625
    spikes, v_seq, _ = run(SnnTorchLeakyImmediate(), params, [1.5, 0.0, 0.5])
    assert spikes == [1.0, 0.0, 0.0] and v_seq == [0.5, 0.25, 0.625]
    # u1 = 2.5 - 1 = 1.5 > 1, so r2 = 1: h2 = 0.75 - 1 = -0.25, no spike, u2 = h2 - (0 - 1) * 1 = 0.75
    assert run(SnnTorchLeakyImmediate(), params, [2.5, 0.0])[1] == [1.5, 0.75]
    # zero: u1 = 1.5 - (1 - 0) * 1.5 = 0; u2 = 0 * 0.5 + 0.25
    assert run(SnnTorchLeakyImmediate(reset_mechanism="zero"), params, [1.5, 0.25])[1] == [0.0, 0.25]


def test_snntorch_synaptic_zero_resets_the_charged_membrane_input_included():
    params = {"beta": 0.5, "threshold": 1.0, "graded": 1.0}
    # u1 = 1.5 (spike); r2 = 1: u2 = m2 - m2 = 0, m2 = 0.75 + 0.25 (Leaky's zero keeps the input: 0.25);
    # u3 = 0.5 * 0 + 0.5 = 0.5
    spikes, v_seq, _ = run(SnnTorchSynapticZero(), params, [1.5, 0.25, 0.5])
    assert spikes == [1.0, 0.0, 0.0] and v_seq == [1.5, 0.0, 0.5]
    assert run(SnnTorchLeaky(reset_mechanism="zero"), params, [1.5, 0.25, 0.5])[1] == [1.5, 0.25, 0.625]
    # r decided from the previous membrane, strictly: u0 = 1.0 is not above the threshold, u1 = 0.5 + 0.75
    assert run(SnnTorchSynapticZero(), params, [0.75], v0=torch.tensor(1.0))[1] == [1.25]
    # u0 = 2.0 > 1: the first step's charge 1.0 + 3.0 is zeroed, so the input 3.0 does not fire
    assert run(SnnTorchSynapticZero(), params, [3.0, 0.5], v0=torch.tensor(2.0))[:2] == ([0.0, 0.0], [0.0, 0.5])


def test_snntorch_synaptic_zero_immediate():
    params = {"beta": 0.5, "threshold": 1.0, "graded": 2.0}
    # u1 = 1.5 - (2/2 - 0) * 1.5 = 0 at once; u2 = 0 + 0.25 (r2 = 0); u3 = 0.125 + 0.5 = 0.625
    spikes, v_seq, _ = run(SnnTorchSynapticZeroImmediate(), params, [1.5, 0.25, 0.5])
    assert spikes == [2.0, 0.0, 0.0] and v_seq == [0.0, 0.25, 0.625]
    # a start above the threshold: r1 = 1 zeroes h1 = 1.0 + 3.0 (no spike), and the immediate part
    # (0 - 1) * 0 adds nothing: u1 = 0 (Leaky's immediate zero: h1 = 0.5 * 0 + 3 fires, u1 = 3 - (1 - 1) * 3 = 3)
    spikes, v_seq, _ = run(SnnTorchSynapticZeroImmediate(), params, [3.0, 0.5], v0=torch.tensor(2.0))
    assert spikes == [0.0, 0.0] and v_seq == [0.0, 0.5]
    assert run(SnnTorchLeakyImmediate(reset_mechanism="zero"), params, [3.0], v0=torch.tensor(2.0))[:2] == ([2.0], [3.0])


def test_snntorch_synaptic_zero_takes_no_other_reset():
    with pytest.raises(ValueError, match="SnnTorchLeaky"):
        SnnTorchSynapticZero(reset_mechanism="subtract")


def test_threshold_comparison_strict_for_snntorch_inclusive_for_spikingjelly():
    assert run(SnnTorchLeaky(), {"beta": 0.5, "threshold": 1.0, "graded": 1.0}, [1.0])[0] == [0.0]
    assert run(SpikingJellyLIF(decay_input=False), LIF, [1.0])[0] == [1.0]


def test_snntorch_graded_spikes():
    spikes, _, _ = run(SnnTorchLeaky(), {"beta": 0.5, "threshold": 1.0, "graded": 2.5}, [1.5, 0.0])
    assert spikes == [2.5, 0.0]


def test_bifurcation_diagonal_conservative_integrates():
    # lambda = 0: h = v + x; 0.5 + 0.5 = 1.0 spikes, soft reset to 0
    spikes, v_seq, _ = run(DiagonalBifurcation(), {"eigenvalues": torch.tensor(0.0), "threshold": 1.0}, [0.5, 0.5, 0.5])
    assert spikes == [0.0, 1.0, 0.0] and v_seq == [0.5, 0.0, 0.5]


def test_bifurcation_diagonal_dissipative_decays():
    # lambda = -0.5: h = 0.5 v + x
    spikes, v_seq, _ = run(DiagonalBifurcation(), {"eigenvalues": torch.tensor(-0.5), "threshold": 1.0}, [0.5, 0.5, 0.5])
    assert spikes == [0.0, 0.0, 0.0] and v_seq == [0.5, 0.75, 0.875]


def test_bifurcation_diagonal_diffusive_grows():
    # lambda = 0.2: h1 = 0.5; h2 = 1.2 * 0.5 + 0.5 = 1.1 -> spike, v = 0.1; h3 = 1.2 * 0.1 + 0.5 = 0.62
    spikes, v_seq, _ = run(DiagonalBifurcation(), {"eigenvalues": torch.tensor(0.2), "threshold": 1.0}, [0.5, 0.5, 0.5])
    assert spikes == [0.0, 1.0, 0.0]
    assert v_seq == pytest.approx([0.5, 0.1, 0.62], abs=1e-6)


def test_bifurcation_eigenvalues_are_clamped_to_the_bounds():
    # lambda = 5 is clamped to 0.2: the same sequence as lambda = 0.2
    clamped = run(DiagonalBifurcation(), {"eigenvalues": torch.tensor(5.0), "threshold": 1.0}, [0.5, 0.5, 0.5])
    at_bound = run(DiagonalBifurcation(), {"eigenvalues": torch.tensor(0.2), "threshold": 1.0}, [0.5, 0.5, 0.5])
    assert clamped == at_bound


def test_bifurcation_hard_reset():
    spikes, v_seq, _ = run(DiagonalBifurcation(v_reset=0.0), {"eigenvalues": torch.tensor(0.0), "threshold": 1.0}, [0.75, 0.5, 0.25])
    # h2 = 1.25 -> spike, hard reset to 0; h3 = 0.25
    assert spikes == [0.0, 1.0, 0.0] and v_seq == [0.75, 0.0, 0.25]


def test_bifurcation_coupled_mixes_channels():
    coupling = torch.tensor([[0.5, 0.5], [0.5, 0.5]])
    x = torch.tensor([[0.75, 0.0], [0.0, 0.0], [0.75, 0.0]]).reshape(3, 1, 2)
    out = multistep(x, CoupledBifurcation(), {"coupling": coupling, "threshold": 1.0}, return_v_seq=True)
    # h1 = [0.75, 0]; h2 = A h1 = [0.375, 0.375]; h3 = A h2 + [0.75, 0] = [1.125, 0.375] -> channel 0 fires
    assert out.spikes.reshape(3, 2).tolist() == [[0, 0], [0, 0], [1, 0]]
    assert out.v_seq.reshape(3, 2).tolist() == [[0.75, 0.0], [0.375, 0.375], [0.125, 0.375]]


def test_initial_state_per_channel_and_full():
    x = torch.zeros(1, 2, 3)
    per_channel = multistep(x, DiagonalBifurcation(), {"eigenvalues": torch.tensor(0.0), "threshold": 1.0}, torch.tensor([0.5, 1.0, 2.0]))
    assert per_channel.spikes[0].tolist() == [[0, 1, 1], [0, 1, 1]]
    full = torch.tensor([[0.0, 1.5, 0.0], [1.5, 0.0, 0.0]])
    out = multistep(x, DiagonalBifurcation(), {"eigenvalues": torch.tensor(0.0), "threshold": 1.0}, full)
    assert out.spikes[0].tolist() == [[0, 1, 0], [1, 0, 0]]


def test_spikes_keep_the_input_dtype_and_state_is_float32():
    x = torch.full((2, 3, 4), 0.75, dtype=torch.bfloat16)
    out = multistep(x, SpikingJellyLIF(decay_input=False), LIF)
    assert out.spikes.dtype == torch.bfloat16 and out.v.dtype == torch.float32
    assert out.spikes[1].eq(1).all()
