"""The triton backend's public launch plans: what the custom ops launch, and what ``bench/kernels_static.py``
compiles for a GPU. A plan launched by hand gives the op's results bit for bit, forward and backward.

Without a GPU the kernels run through Triton's interpreter (the root conftest chooses the mode)."""

import pytest
import torch

from bsnn_lightning.engine import CoupledBifurcation, SnnTorchLeaky, SpikingJellyLIF, multistep
from bsnn_lightning.engine import triton_backend, triton_codes, triton_coupled

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
if DEVICE == "cpu" and not triton_backend._interpreted(triton_backend._kernels()):
    pytest.skip("no CUDA GPU and Triton's interpreter is off", allow_module_level=True)


def _x(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) * 1.5).to(DEVICE)


def test_forward_plan_names_its_kernel_and_reproduces_the_op():
    x, dynamics = _x((5, 2, 3, 4)), SpikingJellyLIF(v_reset=None)
    params = {"tau": 2.0, "threshold": 1.0}
    v0 = torch.zeros(x.shape[1:], device=DEVICE)
    plan = triton_backend.launch_plan(x, v0, dynamics, params, return_v_seq=True)
    assert plan.kernel_name == "multistep_forward_kernel"
    assert plan.constexprs["KIND"] == triton_codes.LIF and plan.constexprs["RESET"] == triton_codes.RESET_SOFT
    assert plan.constexprs["STORE_V_SEQ"] is True and plan.constexprs["SAVE_CKPT"] is False
    assert plan.grid[0] >= 1 and plan.args[0].shape == x.shape
    spikes, v_final, v_seq, ckpt = plan.launch()
    expected = multistep(x, dynamics, params, v0, backend="triton", return_v_seq=True)
    assert torch.equal(spikes, expected.spikes) and torch.equal(v_final, expected.v)
    assert torch.equal(v_seq, expected.v_seq) and ckpt.numel() == 0


def test_backward_plan_gives_autograd_s_gradient():
    x, dynamics = _x((17, 2, 16), seed=1), SnnTorchLeaky()  # T = 17: the forward saves a checkpoint
    params = {"beta": 0.9, "threshold": 1.0, "graded": 1.0}
    v0 = torch.zeros(x.shape[1:], device=DEVICE)
    forward = triton_backend.launch_plan(x, v0, dynamics, params, save=True)
    spikes, _, _, ckpt = forward.launch()
    assert ckpt.shape[0] == 1
    grad = _x(x.shape, seed=2)
    backward = triton_backend.backward_launch_plan(x, v0, dynamics, params, checkpoints=ckpt, grad_spikes=grad)
    assert backward.kernel_name == "multistep_backward_kernel"
    assert backward.constexprs["NEED_X"] is True and backward.constexprs["NEED_V0"] is False
    grad_x = backward.launch()[0]
    leaf = x.clone().requires_grad_()
    out = multistep(leaf, dynamics, params, v0, backend="triton")
    assert torch.equal(spikes, out.spikes)
    (expected,) = torch.autograd.grad(out.spikes, leaf, grad)
    assert torch.equal(grad_x, expected)


def test_coupled_plans_are_their_family_s():
    x, dynamics = _x((4, 2, 3, 2, 2), seed=3), CoupledBifurcation()
    params = {"coupling": -0.3 * torch.eye(3, device=DEVICE), "threshold": 1.0}
    v0 = torch.zeros(x.shape[1:], device=DEVICE)
    with pytest.raises(TypeError, match=r"triton_coupled\.launch_plan"):
        triton_backend.launch_plan(x, v0, dynamics, params)
    plan = triton_coupled.launch_plan(x, v0, dynamics, params, save=True)
    assert plan.kernel_name == "coupled_forward_kernel" and plan.constexprs["C"] == 3
    spikes, v_final, _, h_seq = plan.launch()
    expected = multistep(x, dynamics, params, v0, backend="triton")
    assert torch.equal(spikes, expected.spikes) and torch.equal(v_final, expected.v)
    backward = triton_coupled.backward_launch_plan(x, v0, dynamics, params, h_seq=h_seq,
                                                   grad_spikes=torch.ones_like(x))  # fmt: skip
    assert backward.kernel_name == "coupled_backward_kernel"


def test_an_empty_batch_plans_no_launch():
    x = torch.zeros((3, 0, 4), device=DEVICE)
    plan = triton_backend.launch_plan(x, torch.zeros((0, 4), device=DEVICE), SpikingJellyLIF(), {"tau": 2.0,
                                      "threshold": 1.0})  # fmt: skip
    assert plan.kernel is None and plan.kernel_name is None
    spikes, v_final, _, _ = plan.launch()
    assert spikes.shape == x.shape and v_final.shape == (0, 4)
