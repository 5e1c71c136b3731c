"""Value checks never read a device value back to the host in a training step by default (checked without a
GPU on the meta device, where any ``.item()`` / ``bool()`` / ``.tolist()`` raises), and deferred checks still
stop training, at the logging interval."""

import lightning as L
import pytest
import torch
from torch import nn

import bsnn_lightning as bl
from bsnn_lightning.callbacks import ConvertNeurons
from bsnn_lightning.engine import SpikingJellyLIF, checks, multistep
from bsnn_lightning.models import SnnTorchConvNet, SpikingConvNet, SpikingJellyConvNet

SHAPE = dict(in_channels=2, num_classes=10, channels=(4, 8), hidden=16, input_size=(16, 16))


@pytest.fixture(autouse=True)
def _no_leftover_flags():
    checks.clear()
    yield
    checks.clear()


def _own_net():
    return SpikingConvNet(**SHAPE)


def _snntorch_net():
    pytest.importorskip("snntorch")
    return SnnTorchConvNet(**SHAPE)


def _spikingjelly_net():
    pytest.importorskip("spikingjelly.activation_based")
    return SpikingJellyConvNet(**SHAPE)


def _training_step_on_meta(net, check_finite):
    """Convert (with the methods), move to the meta device, run forward + TET loss + backward + Adam step."""
    step_mode = "m" if isinstance(net, SnnTorchConvNet) else None
    bl.convert(
        net, "bifurcation", imp="channel", backend="torch", step_mode=step_mode, check_finite=check_finite,
        example_input=torch.rand(2, 1, 2, 16, 16),
    )  # fmt: skip
    net = net.to("meta")
    optimizer = torch.optim.Adam(bl.neuron_param_groups(net), lr=1e-3)
    x = torch.rand(4, 3, 2, 16, 16, device="meta")
    y = torch.randint(0, 10, (3,), device="meta")
    bl.reset_states(net)
    loss = bl.losses.label_smoothed_tet(net(x), y, epsilon=0.1, lam=0.05)
    loss.backward()
    optimizer.step()


@pytest.mark.parametrize("make", [_own_net, _snntorch_net, _spikingjelly_net], ids=["bsnn", "snntorch", "spikingjelly"])
def test_a_training_step_off_the_cpu_reads_nothing_back(make):
    _training_step_on_meta(make(), "auto")  # would raise on the first host read of a meta tensor
    assert checks.pending() >= 2  # the engine's and the loss's checks were deferred, not dropped


def test_the_meta_device_does_catch_a_host_read():
    # the test above can fail: the same step with immediate checks reads values back and raises
    with pytest.raises((RuntimeError, NotImplementedError)):
        _training_step_on_meta(_own_net(), "sync")


def test_deferred_check_raises_when_read_naming_the_dynamics():
    x = torch.rand(3, 2, 4)
    x[1, 0, 2] = float("nan")
    out = multistep(x, SpikingJellyLIF(), {"tau": 2.0, "threshold": 1.0}, check_finite="defer")
    assert torch.isnan(out.v).any()  # no error yet
    with pytest.raises(ValueError, match=r"non-finite values .* in: the state or parameters of SpikingJellyLIF"):
        checks.raise_deferred()
    checks.raise_deferred()  # read once: the flags are cleared


def test_sync_check_names_the_culprit_at_once():
    x = torch.rand(3, 2, 4)
    x[2, 1, 0] = float("inf")
    with pytest.raises(ValueError, match=r"the input x has NaN or Inf \(first at time step 2\)"):
        multistep(x, SpikingJellyLIF(), {"tau": 2.0, "threshold": 1.0}, check_finite="sync")


def test_large_finite_values_are_not_a_false_alarm():
    # a sum of these overflows to inf; the deferred check uses min/max, which cannot
    big = torch.full((4,), 3e38)
    assert not bool(checks.non_finite(big, big))
    assert bool(checks.non_finite(big, torch.tensor([0.0, float("-inf")])))
    assert bool(checks.non_finite(torch.tensor([float("nan"), 1.0])))


def test_bad_mode_is_refused():
    with pytest.raises(ValueError, match=r"expected check_finite to be one of \['auto', 'sync', 'defer', 'off'\]"):
        multistep(torch.rand(2, 1, 3), SpikingJellyLIF(), {"tau": 2.0, "threshold": 1.0}, check_finite="later")
    with pytest.raises(ValueError, match=r"expected check_finite to be one of"):
        bl.LIFNeuron(check_finite="sometimes")


class _NanAfterTwoSteps(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 4), bl.LIFNeuron(), nn.Linear(4, 1))
        self.steps = 0

    def training_step(self, batch, batch_idx):
        self.steps += 1
        x = batch[0].transpose(0, 1)
        if self.steps >= 3:
            x = x * float("nan")
        bl.reset_states(self.net)
        return self.net(x).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)

    def train_dataloader(self):
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.rand(40, 5, 3)), batch_size=4)


def test_convert_neurons_reads_deferred_checks_at_the_logging_interval(tmp_path):
    module = _NanAfterTwoSteps()
    trainer = L.Trainer(
        callbacks=[ConvertNeurons(check_finite="defer")], max_epochs=1, log_every_n_steps=5, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
    )  # fmt: skip
    with pytest.raises(ValueError, match="non-finite values"):
        trainer.fit(module)
    assert module.steps == 5  # the NaN came at step 3; the deferred flags were read at step 5, not before


class _PowerCut(L.Callback):
    """Interrupts a fit at the start of training step ``at`` (as a crash or a killed notebook cell would)."""

    def __init__(self, at: int):
        self.at = at

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.at:
            raise RuntimeError("power cut")


def _trainer(tmp_path, *callbacks, steps=None):
    return L.Trainer(
        callbacks=[ConvertNeurons(check_finite="defer"), *callbacks], max_epochs=1, max_steps=steps or -1,
        log_every_n_steps=5, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, default_root_dir=tmp_path,
    )  # fmt: skip


def test_a_flag_left_by_an_interrupted_run_is_not_raised_in_another_models_loop(tmp_path):
    broken = _NanAfterTwoSteps()
    with pytest.raises(RuntimeError, match="power cut"):  # NaN at step 3, interrupted at step 4, before the read at 5
        _trainer(tmp_path, _PowerCut(at=3)).fit(broken)
    assert checks.pending(broken) >= 1
    healthy = _NanAfterTwoSteps()
    healthy.steps = -100  # never reaches its NaN in this fit
    _trainer(tmp_path).fit(healthy)  # reads its own flags only
    assert healthy.steps == -90
    assert checks.pending(broken) >= 1  # broken's flag is still there: not dropped, not blamed on healthy
    with pytest.raises(ValueError, match=r"non-finite values \(NaN or Inf\) were found by _NanAfterTwoSteps"):
        checks.raise_deferred(broken)


def test_a_new_fit_of_the_same_model_starts_without_the_interrupted_runs_flags(tmp_path):
    module = _NanAfterTwoSteps()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    with pytest.raises(RuntimeError, match="power cut"):
        _trainer(tmp_path, _PowerCut(at=3)).fit(module)
    assert checks.pending(module) >= 1
    module.load_state_dict(before)  # the NaN step spoilt the weights: start again from the first ones
    module.steps = -100  # the rerun never reaches the NaN
    _trainer(tmp_path, steps=4).fit(module)
    assert module.steps == -96 and checks.pending(module) == 0


def test_two_models_stepped_in_turn_each_read_their_own_flags():
    """Two networks trained in one loop, each checked in its own scope: a NaN in one is raised by its own
    read only, naming it, and the other's read passes."""
    a = nn.Sequential(nn.Linear(3, 4), bl.LIFNeuron(check_finite="defer"))
    b = nn.Sequential(nn.Linear(3, 4), bl.LIFNeuron(check_finite="defer"))
    x = torch.rand(4, 2, 3)
    with checks.owned_by(b):
        b(x * float("nan"))
    with checks.owned_by(a):
        a(x)
    checks.raise_deferred(a)
    with pytest.raises(ValueError, match=r"found by Sequential since the last check in: the state or parameters"):
        checks.raise_deferred(b)
    assert checks.pending() == 0


def test_owned_checks_read_nothing_back_from_the_device():
    with checks.owned_by(_own_net()) as net:
        _training_step_on_meta(net, "auto")  # a host read of a meta tensor would raise
        assert checks.pending(net) >= 2 and checks.pending() == checks.pending(net)
