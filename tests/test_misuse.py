"""Misuse is done right or refused with its reason (issue 19, items 1-6): subclasses of supported neurons, a neuron
placed twice, an IMP mode change, a state dict of other settings, parameters an optimizer does not hold, and a
LIF time constant out of range. The property tests in ``test_misuse_properties.py`` draw such cases at random."""

import copy
import warnings

import lightning as L
import pytest
import snntorch as snn
import torch
from spikingjelly.activation_based import functional, layer, neuron
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import bsnn_lightning as bl
from bsnn_lightning.callbacks import ConvertNeurons
from bsnn_lightning.convert import check_optimized, unoptimized_parameters
from bsnn_lightning.models import TimeDistributed


class MyLIF(neuron.LIFNode):
    pass


class MyLeaky(snn.Leaky):
    pass


def _sj_net(node):
    return nn.Sequential(layer.Linear(4, 4, step_mode="m"), node, layer.Linear(4, 4, step_mode="m"), neuron.LIFNode(step_mode="m"))


# --- 1. subclasses -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dynamics", ["lif", "bifurcation"])
def test_a_subclass_of_a_spikingjelly_node_is_refused_by_name_and_nothing_beside_it_changes(dynamics):
    net = _sj_net(MyLIF(step_mode="m"))
    with pytest.raises(ValueError, match=r"cannot convert '1': .*MyLIF is a subclass of spikingjelly LIFNode, and a subclass may change the equations"):
        bl.convert(net, dynamics, example_input=torch.rand(3, 2, 4))
    assert type(net[1]) is MyLIF and type(net[3]) is neuron.LIFNode  # planned first: the supported node untouched
    assert bl.convert(net, backend="native") is net  # keeping the library's own neurons is allowed
    assert type(net[1]) is MyLIF


def test_a_subclass_of_an_snntorch_neuron_is_refused_by_name_beside_supported_ones():
    net = nn.Sequential(nn.Linear(4, 4), snn.Leaky(beta=0.9, init_hidden=True), nn.Linear(4, 4), MyLeaky(beta=0.9, init_hidden=True))
    with pytest.raises(ValueError, match=r"cannot convert '3': .*MyLeaky is a subclass of snntorch Leaky, and a subclass may change the equations"):
        bl.convert(net, "lif")
    assert type(net[1]) is snn.Leaky and type(net[3]) is MyLeaky


@bl.same_equations
class SlowLIF(neuron.LIFNode):
    """A subclass that only changes defaults and adds a method, declared as such."""

    def __init__(self, **kwargs):
        super().__init__(tau=4.0, step_mode="m", **kwargs)

    def describe(self):
        return "slow"


@bl.same_equations
class ChargesDifferently(neuron.LIFNode):
    def single_step_functional_forward(self, x, *args, **kwargs):  # SpikingJelly 2.0's charge, fire and reset
        return super().single_step_functional_forward(2 * x, *args, **kwargs)


@bl.same_equations
class DeclaredLeaky(snn.Leaky):
    pass


def test_a_subclass_declared_with_same_equations_converts_as_its_base_and_stays_exact():
    x = torch.rand(5, 2, 4) * 2
    native = _sj_net(SlowLIF())
    converted = bl.convert(copy.deepcopy(native), "lif", backend="torch")
    assert type(converted[1]).__name__ == "SlowLIF" and isinstance(converted[1], SlowLIF) and converted[1].describe() == "slow"
    assert torch.equal(converted(x), native(x))
    bl.convert(converted, backend="native")
    assert type(converted[1]) is SlowLIF
    leaky = bl.convert(nn.Sequential(nn.Linear(4, 4), DeclaredLeaky(beta=0.8, init_hidden=True)), "bifurcation", step_mode="m",
                       example_input=x)
    assert isinstance(leaky[1], DeclaredLeaky) and leaky[1].eigenvalues is not None
    with pytest.raises(ValueError, match=r"ChargesDifferently is declared with same_equations but overrides \['ChargesDifferently.single_step_functional_forward'\] of spikingjelly LIFNode"):
        bl.convert(_sj_net(ChargesDifferently(step_mode="m")), "lif")

    class Undeclared(SlowLIF):  # a subclass of a declared subclass is a subclass again: declare it too
        pass

    with pytest.raises(ValueError, match=r"Undeclared is a subclass of spikingjelly LIFNode.*declare it with @bsnn_lightning.same_equations"):
        bl.convert(_sj_net(Undeclared()), "lif")
    with pytest.raises(TypeError, match="same_equations expects a subclass of a library neuron class, got 3"):
        bl.same_equations(3)


def test_a_subclass_of_this_packages_lif_is_not_replaced_by_a_plain_bifurcation_neuron():
    class CountingLIF(bl.LIFNeuron):
        def forward(self, x):
            self.calls = getattr(self, "calls", 0) + 1
            return super().forward(x)

    net = nn.Sequential(TimeDistributed(nn.Linear(4, 4)), CountingLIF())
    with pytest.raises(ValueError, match=r"cannot convert '1': .*CountingLIF is a subclass of LIFNeuron: bifurcation dynamics replace"):
        bl.convert(net, "bifurcation", example_input=torch.rand(3, 2, 4))
    assert type(net[1]) is CountingLIF
    bl.convert(net, imp="layer")  # the neuron stays itself: its own forward keeps running
    net(torch.rand(3, 2, 4))
    assert net[1].calls == 1 and net[1].imp is not None


def test_reset_states_clears_a_subclass_membrane_and_spikingjelly_memory_layers():
    net = nn.Sequential(layer.Linear(4, 4, step_mode="m"), MyLIF(step_mode="m"), layer.Dropout(0.5, step_mode="m"))
    net.train()
    net(torch.rand(3, 2, 4))
    assert isinstance(net[1].v, torch.Tensor) and net[2].mask is not None
    bl.reset_states(net)
    assert net[1].v == 0.0 and net[2].mask is None  # as functional.reset_net leaves them
    net(torch.rand(3, 2, 4))
    functional.reset_net(net)
    assert net[1].v == 0.0 and net[2].mask is None


def test_back_to_native_snntorch_neurons_the_layers_stop_folding_time():
    net = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), snn.Leaky(beta=0.8, init_hidden=True), nn.Flatten(),
                        nn.Linear(4 * 5 * 5, 3), snn.Leaky(beta=0.8, init_hidden=True, output=True))
    x = torch.rand(4, 2, 2, 5, 5)
    bl.convert(net, "lif", step_mode="m")
    spikes, _ = net(x)
    bl.convert(net, backend="native")  # snnTorch's own neurons take one step per call: so do the layers again
    assert not any(hasattr(m, "_bsnn_fold_handles") for m in net)
    bl.reset_states(net)
    stepped = torch.stack([net(x_t)[0] for x_t in x])
    assert torch.equal(stepped, spikes)


# --- 2. one neuron at several places -----------------------------------------------------------------------------
def test_a_neuron_placed_twice_is_converted_once_for_both_places():
    lif = bl.LIFNeuron()
    net = nn.Sequential(TimeDistributed(nn.Linear(4, 4)), lif, TimeDistributed(nn.Linear(4, 4)), lif)
    bl.convert(net, "bifurcation", imp="channel", example_input=torch.rand(3, 2, 4))
    assert type(net[1]) is bl.BifurcationNeuron and net[1] is net[3]
    assert len([p for p in net.parameters()]) == len(set(map(id, net.parameters())))


def test_a_neuron_shared_by_two_submodules_stays_one_neuron():
    lif = bl.LIFNeuron()
    first, second = nn.Sequential(TimeDistributed(nn.Linear(4, 4)), lif), nn.Sequential(lif)
    net = nn.Sequential(first, second)
    bl.convert(net, "bifurcation", example_input=torch.rand(3, 2, 4))
    assert net[0][1] is net[1][0] and type(net[1][0]) is bl.BifurcationNeuron
    (eigenvalues,) = [p for name, p in net.named_parameters() if name.endswith("eigenvalues")]  # one, not two
    assert eigenvalues is net[1][0].eigenvalues


# --- 3. an IMP mode change -------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode, shape", [("neuron", (3, 5)), ("channel", (3,))])
def test_convert_changes_an_imp_per_layer_to_the_requested_mode(mode, shape):
    n = bl.LIFNeuron(imp="layer")
    net = nn.Sequential(TimeDistributed(nn.Conv1d(2, 3, 1)), n)
    bl.convert(net, imp=mode, example_input=torch.rand(2, 4, 2, 5))
    assert n.bsnn_settings.imp == mode and tuple(n.imp.shape) == shape


def test_an_imp_per_channel_from_a_checkpoint_becomes_per_neuron_when_asked():
    source = nn.Sequential(TimeDistributed(nn.Conv1d(2, 3, 1)), bl.LIFNeuron(imp="channel"))
    x = torch.rand(2, 4, 2, 5)
    bl.materialize(source, x)
    fresh = nn.Sequential(TimeDistributed(nn.Conv1d(2, 3, 1)), bl.LIFNeuron(imp="channel"))
    fresh.load_state_dict(source.state_dict())  # shape still unknown: the IMP is [3]
    bl.convert(fresh, imp="neuron", example_input=x)
    assert tuple(fresh[1].imp.shape) == (3, 5)


# --- 4. a state dict of other settings --------------------------------------------------------------------------
def _sj_pair():
    x = torch.rand(3, 2, 4) * 2
    source = bl.convert(_sj_net(neuron.LIFNode(step_mode="m")), "bifurcation", imp="neuron", backend="torch", example_input=x)
    target = bl.convert(_sj_net(neuron.LIFNode(step_mode="m")), "lif", backend="torch")
    return source, target, x


def test_eigenvalues_and_an_imp_do_not_load_strictly_into_a_lif_model():
    source, target, x = _sj_pair()
    with pytest.warns(UserWarning, match=r"the state dict holds \['1.imp', '1.eigenvalues', '1.eigenvalue_bounds'\], which LIFNode '1' .* does not use; they need dynamics='bifurcation', structure='diagonal', bounds=\(-1.0, 0.2\), imp='channel' or 'neuron'"):
        with pytest.raises(RuntimeError, match=r'Unexpected key\(s\) in state_dict: "1.imp", "1.eigenvalues", "1.eigenvalue_bounds", "3.imp", "3.eigenvalues", "3.eigenvalue_bounds"'):
            target.load_state_dict(source.state_dict())
    assert target[1].eigenvalues is None and target[1].imp is None and target[1].bsnn_settings.dynamics == "lif"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = target.load_state_dict(source.state_dict(), strict=False)  # the weights load, the rest is left out
    assert set(result.unexpected_keys) == {f"{i}.{k}" for i in (1, 3) for k in ("imp", "eigenvalues", "eigenvalue_bounds")}
    assert not result.missing_keys
    assert target[1].eigenvalues is None and torch.equal(target[0].weight, source[0].weight)
    # converted with the checkpoint's settings, it loads and computes what the source computes
    bl.convert(target, "bifurcation", imp="neuron", example_input=x)
    target.load_state_dict(source.state_dict())
    bl.reset_states(source), bl.reset_states(target)
    assert torch.equal(target(x), source(x))


def test_eigenvalues_trained_with_other_bounds_are_refused():
    x = torch.rand(3, 2, 4)
    source = bl.convert(_sj_net(neuron.LIFNode(step_mode="m")), "bifurcation", example_input=x)
    state = source.state_dict()
    assert state["1.eigenvalue_bounds"].tolist() == [-1.0, 0.2]
    narrow = bl.convert(_sj_net(neuron.LIFNode(step_mode="m")), "bifurcation", bounds=(-0.5, 0.2), eigen_init=(-0.5, 0.0), example_input=x)
    with pytest.raises(RuntimeError, match=r"1.eigenvalue_bounds: the eigenvalues were trained clamped to bounds \(-1.0, 0.2\), but LIFNode '1' clamps to \(-0.5, 0.2\); convert with bounds=\(-1.0, 0.2\)"):
        narrow.load_state_dict(state)
    same = bl.convert(_sj_net(neuron.LIFNode(step_mode="m")), "bifurcation", example_input=x)
    same.load_state_dict(state)
    assert "1.eigenvalue_bounds" in state  # the caller's dict is left as it was


def test_a_stored_parameter_of_another_mode_or_an_absent_one_is_refused():
    stored = nn.Sequential(TimeDistributed(nn.Linear(4, 3)), bl.LIFNeuron(imp="layer")).state_dict()
    with pytest.raises(RuntimeError, match=r"1.imp: a stored shape \[\] is not per channel \(one value per channel\); the neuron's settings: dynamics=lif, imp=channel"):
        nn.Sequential(TimeDistributed(nn.Linear(4, 3)), bl.LIFNeuron(imp="channel")).load_state_dict(stored)
    plain = nn.Sequential(TimeDistributed(nn.Linear(4, 3)), bl.LIFNeuron()).state_dict()
    with pytest.raises(RuntimeError, match=r'Missing key\(s\) in state_dict: "1.imp"'):
        nn.Sequential(TimeDistributed(nn.Linear(4, 3)), bl.LIFNeuron(imp="neuron")).load_state_dict(plain)


# --- 5. parameters no optimizer holds ---------------------------------------------------------------------------
def test_a_convert_after_the_optimizer_is_named_by_the_check():
    net = nn.Sequential(TimeDistributed(nn.Linear(4, 3)), bl.LIFNeuron())
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    bl.convert(net, "bifurcation", imp="layer", example_input=torch.rand(2, 2, 4))
    assert unoptimized_parameters(net, [optimizer]) == ["1.imp", "1.eigenvalues"]
    with pytest.raises(ValueError, match=r"no optimizer holds the neuron parameters \['1.imp', '1.eigenvalues'\]"):
        check_optimized(net, [optimizer])
    assert unoptimized_parameters(net, [optimizer], exclude=["neuron"]) == []  # left out on purpose
    check_optimized(net, [torch.optim.SGD(net.parameters(), lr=0.1)])


def _frames():
    x, y = torch.rand(12, 3, 4), torch.randint(0, 2, (12,))
    return DataLoader(TensorDataset(x, y), batch_size=6)


def _classifier(neuron_module):
    net = nn.Sequential(TimeDistributed(nn.Linear(4, 3)), neuron_module, TimeDistributed(nn.Linear(3, 2)))
    return bl.SpikingClassifier(net, num_classes=2, loss="ce")


def _trainer(tmp_path, callbacks=()):
    return L.Trainer(max_steps=2, logger=False, enable_progress_bar=False, enable_checkpointing=False,
                     enable_model_summary=False, accelerator="cpu", devices=1, callbacks=list(callbacks))


class _ConvertAtTrainStart(L.Callback):
    def on_train_start(self, trainer, pl_module):
        bl.convert(pl_module, imp="layer")


def test_a_convert_after_the_trainer_built_its_optimizers_warns_and_the_first_step_refuses(tmp_path):
    model = _classifier(bl.LIFNeuron())
    with pytest.warns(UserWarning, match=r"convert added the parameters \['net.1.imp'\] after the Trainer built its optimizers"):
        with pytest.raises(ValueError, match=r"no optimizer holds the neuron parameters \['net.1.imp'\]"):
            _trainer(tmp_path, [_ConvertAtTrainStart()]).fit(model, _frames())


def test_parameters_made_at_the_first_forward_are_refused_after_the_first_step(tmp_path):
    model = _classifier(bl.BifurcationNeuron())  # its eigenvalues wait for the first forward
    with pytest.warns(UserWarning, match="optimizer built before this call does not hold them"):
        with pytest.raises(ValueError, match=r"no optimizer holds the neuron parameters \['net.1.eigenvalues'\]"):
            _trainer(tmp_path).fit(model, _frames())
    # the ConvertNeurons callback checks a LightningModule of the user's own as well (here after the first step: the
    # IMP appears after the callback's check at the start of training)
    class Plain(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(TimeDistributed(nn.Linear(4, 3)), bl.LIFNeuron(), TimeDistributed(nn.Linear(3, 2)))

        def training_step(self, batch, batch_idx):
            bl.reset_states(self)
            return self.net(batch[0].transpose(0, 1)).mean()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    with pytest.warns(UserWarning, match="after the Trainer built its optimizers"):
        with pytest.raises(ValueError, match=r"no optimizer holds the neuron parameters \['net.1.imp'\]"):
            _trainer(tmp_path, [ConvertNeurons(), _ConvertAtTrainStart()]).fit(Plain(), _frames())


class _FramesModule(L.LightningDataModule):
    """Batches of [N, T, 4] sequences, with the ``input_shape`` the package's DataModules give."""

    input_shape = (3, 4)

    def train_dataloader(self):
        return _frames()


def test_a_classifier_with_a_datamodule_creates_shaped_parameters_before_its_optimizers(tmp_path):
    """The intervals recipe's case: bifurcation neurons with no ConvertNeurons example batch. The datamodule's
    ``input_shape`` gives SpikingClassifier a dry forward at setup, so the eigenvalues exist, and train, before the
    optimizer is built (they used to be created by the first forward after it, and never trained)."""
    model = _classifier(bl.BifurcationNeuron())
    _trainer(tmp_path).fit(model, datamodule=_FramesModule())
    eigenvalues = model.net[1].eigenvalues
    held = {id(p) for group in model.trainer.optimizers[0].param_groups for p in group["params"]}
    assert id(eigenvalues) in held and eigenvalues.grad is not None


def test_not_optimized_kinds_are_left_out_on_purpose(tmp_path):
    model = bl.SpikingClassifier(
        nn.Sequential(TimeDistributed(nn.Linear(4, 3)), bl.LIFNeuron(imp="layer"), TimeDistributed(nn.Linear(3, 2))),
        num_classes=2, loss="ce", not_optimized=["imp"],
    )
    _trainer(tmp_path).fit(model, _frames())  # no error: the IMP is out of the optimizer by request


# --- 6. time constants, thresholds and bounds out of range --------------------------------------------------------
@pytest.mark.parametrize("tau", [0.5, 1.0, -2.0, float("nan"), float("inf")])
def test_a_lif_time_constant_at_or_below_one_is_refused(tau):
    with pytest.raises(ValueError, match=rf"expected tau > 1, got {tau}: the membrane keeps 1 - 1/tau"):
        bl.LIFNeuron(tau=tau)


def test_a_reset_at_or_above_the_threshold_and_bounds_below_minus_one_are_refused():
    with pytest.raises(ValueError, match=r"expected v_reset < threshold \(1.0\) or None \(soft reset\), got 1.0"):
        bl.LIFNeuron(v_reset=1.0)
    with pytest.raises(ValueError, match=r"expected eigenvalue bounds \(lo, hi\) with -1 <= lo < hi, got \(-1.5, 0.2\)"):
        bl.BifurcationNeuron(bounds=(-1.5, 0.2), eigen_init=(-1.0, 0.0))


def test_a_learnable_tau_or_threshold_that_leaves_its_range_is_caught():
    n = bl.LIFNeuron(learn_tau=True)
    with torch.no_grad():
        n.tau.fill_(0.8)
    with pytest.raises(ValueError, match=r"the learnable tau of LIFNeuron \(it must stay > 1.*left its range: tau = \[0.8"):
        n(torch.rand(2, 1, 3))
    n = bl.LIFNeuron(learn_threshold=True)
    with torch.no_grad():
        n.threshold.fill_(-0.1)
    with pytest.raises(ValueError, match=r"the learnable threshold of LIFNeuron \(it must stay > 0\) left its range"):
        n(torch.rand(2, 1, 3))


def test_a_learnable_tau_check_is_deferred_without_a_host_read():
    from bsnn_lightning.engine import checks

    n = bl.LIFNeuron(learn_tau=True, check_finite="defer")
    with torch.no_grad():
        n.tau.fill_(0.9)
    checks.raise_deferred()  # nothing pending from elsewhere
    n(torch.rand(2, 1, 3))  # no error yet: the flag stays on the device
    with pytest.raises(ValueError, match=r"the learnable tau of LIFNeuron \(it must stay > 1"):
        checks.raise_deferred()
    n.reset_state()
    copy.deepcopy(n)  # a guarded neuron still copies
