"""The LightningModule and the callbacks, with real Trainers."""

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import bsnn_lightning as bl
from bsnn_lightning.analysis import eigenvalue_summary
from bsnn_lightning.callbacks import ConvertNeurons, EigenvalueMonitor, FiringRateMonitor, ResetStates, SpikeMonitor
from bsnn_lightning.models import SpikingConvNet, TimeDistributed


class TensorFrames(L.LightningDataModule):
    """70 random event-frame sequences [T=4, 2, 12, 12], 3 classes; batches of 16 leave a last batch of 6."""

    input_shape = (4, 2, 12, 12)

    def setup(self, stage):
        g = torch.Generator().manual_seed(0)
        self.y = torch.randint(0, 3, (70,), generator=g)
        # class-dependent event density, so a few steps can learn something
        self.x = (torch.rand(70, *self.input_shape, generator=g) < 0.1 + 0.2 * self.y.view(-1, 1, 1, 1, 1) / 2).float()

    def train_dataloader(self):
        return DataLoader(TensorDataset(self.x, self.y), batch_size=16)

    val_dataloader = test_dataloader = train_dataloader


def small_net(classes=3):
    return SpikingConvNet(in_channels=2, num_classes=classes, channels=(4,), hidden=8, input_size=(12, 12))


def trainer(tmp_path, **kwargs):
    defaults = dict(
        max_epochs=1, logger=L.pytorch.loggers.CSVLogger(tmp_path), enable_progress_bar=False,
        enable_checkpointing=False, enable_model_summary=False, accelerator="cpu", devices=1,
    )
    defaults.update(kwargs)
    return L.Trainer(**defaults)


@pytest.mark.slow
def test_classifier_fits_and_logs_accuracy_per_step_and_firing_rates(tmp_path):
    torch.manual_seed(0)
    model = bl.SpikingClassifier(small_net(), num_classes=3, loss="tet")
    snapshot = _ParametersAtTrainStart()
    t = trainer(tmp_path, max_epochs=2, callbacks=[ConvertNeurons(dynamics="bifurcation", imp="channel"), snapshot])
    t.fit(model, datamodule=TensorFrames())
    metrics = t.callback_metrics
    assert {"train/loss", "train/acc", "val/loss", "val/acc", "val/acc_t1", "val/acc_t4"} <= set(metrics)
    assert {"val/rate/layers.1", "val/rate/layers.5"} <= set(metrics)
    assert all(torch.isfinite(metrics[k]) for k in metrics)
    # every parameter trained, the converted neurons' new ones (created at setup) included
    after = dict(model.named_parameters())
    assert set(snapshot.before) == set(after) and {"net.layers.1.imp", "net.layers.1.eigenvalues"} <= set(after)
    unchanged = [name for name, value in snapshot.before.items() if torch.equal(value, after[name])]
    assert unchanged == []
    optimized = {id(p) for g in t.optimizers[0].param_groups for p in g["params"]}
    assert id(model.net.layers[1].imp) in optimized and id(model.net.layers[1].eigenvalues) in optimized


class _ParametersAtTrainStart(L.Callback):
    def on_train_start(self, trainer, pl_module):
        self.before = {name: p.detach().clone() for name, p in pl_module.named_parameters()}


def test_static_inputs_are_repeated_over_time_steps(tmp_path):
    net = nn.Sequential(TimeDistributed(nn.Flatten(), nn.Linear(16, 8)), bl.LIFNeuron(), TimeDistributed(nn.Linear(8, 3)))
    model = bl.SpikingClassifier(net, num_classes=3, static_steps=5, loss="lts")
    images = torch.rand(7, 1, 4, 4)
    out = model(images)
    assert out.shape == (5, 7, 3)
    assert model.readout_name == "lts"
    # the same image at each of the 5 steps: the network's output on the explicitly repeated sequence
    bl.reset_states(net)
    torch.testing.assert_close(out, net(images.unsqueeze(0).expand(5, -1, -1, -1, -1)))


def test_classifier_rejects_a_network_with_the_wrong_output(tmp_path):
    model = bl.SpikingClassifier(small_net(classes=4), num_classes=3)
    with pytest.raises(ValueError, match=r"expected the network to map \[T, N, \.\.\.\] = \[4, 2, 2, 12, 12\] to \[T, N, num_classes\] = \[4, 2, 3\], got \[4, 2, 4\]"):
        model(torch.rand(2, 4, 2, 12, 12))


def test_neuron_parameters_get_no_weight_decay(tmp_path):
    model = bl.SpikingClassifier(
        small_net(), num_classes=3, optimizer=lambda params: torch.optim.AdamW(params, lr=1e-3, weight_decay=0.06)
    )
    bl.convert(model, dynamics="bifurcation", imp="neuron", example_input=torch.rand(2, 4, 2, 12, 12))
    opt = model.configure_optimizers()
    no_decay = [g for g in opt.param_groups if g["weight_decay"] == 0.0][0]
    assert any(p is model.net.layers[1].imp for p in no_decay["params"])
    assert all(g["weight_decay"] == 0.06 for g in opt.param_groups if g is not no_decay)


class UserModule(L.LightningModule):
    """A user's own module, in the snnTorch/SpikingJelly tutorial style: it never resets its neurons."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(TimeDistributed(nn.Flatten(), nn.Linear(288, 16)), bl.LIFNeuron(), TimeDistributed(nn.Linear(16, 3)))
        self.outputs = []

    def training_step(self, batch, batch_idx):
        x, y = batch
        out = self.net(x.transpose(0, 1))
        self.outputs.append((x, out.detach()))
        return nn.functional.cross_entropy(out.mean(0), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)  # lr 0: outputs depend only on the state handling


def test_without_reset_states_state_leaks_fail_loudly(tmp_path):
    # the second batch starts from the first batch's state, whose graph the first backward freed
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        trainer(tmp_path).fit(UserModule(), datamodule=TensorFrames())


def test_reset_states_callback_stops_state_leaking_between_batches(tmp_path):
    module = UserModule()
    trainer(tmp_path, callbacks=[ResetStates()]).fit(module, datamodule=TensorFrames())
    assert len(module.outputs) == 5  # the last batch of 6 included
    assert module.net[1].v is None  # reset after the last batch too, releasing its graph
    for x, out in module.outputs:  # each batch's output equals a fresh run on that batch alone
        bl.reset_states(module.net)
        assert torch.equal(module.net(x.transpose(0, 1)), out)


def test_convert_callback_without_shapes_says_what_to_do(tmp_path):
    t = trainer(tmp_path, callbacks=[ConvertNeurons(imp="neuron")])
    with pytest.raises(ValueError, match="need their input shape") as refused:
        t.fit(UserModule(), datamodule=TensorFrames())
    assert "ConvertNeurons(example_input=batch)" in str(refused.value) and "example_input_array" in str(refused.value)


@pytest.mark.slow
def test_spike_monitor_logs_rates_and_eigenvalues(tmp_path):
    model = bl.SpikingClassifier(small_net(), num_classes=3)
    t = trainer(tmp_path, callbacks=[ConvertNeurons(dynamics="bifurcation"), SpikeMonitor(every_n_steps=2)], log_every_n_steps=1)
    t.fit(model, datamodule=TensorFrames())
    keys = set(t.callback_metrics)
    assert "spikes/rate/net.layers.1" in keys
    assert {"eigen/net.layers.1/dissipative", "eigen/net.layers.1/min"} <= keys
    model(torch.zeros(2, 4, 2, 12, 12))
    assert bl.recordings(model) == {}  # monitoring off outside logging steps


@pytest.mark.slow
def test_rate_and_eigenvalue_monitors_work_alone(tmp_path):
    rates, eigen = FiringRateMonitor(every_n_steps=3), EigenvalueMonitor(conservative_tol=0.5)
    model = bl.SpikingClassifier(small_net(), num_classes=3)
    t = trainer(tmp_path, max_epochs=2, callbacks=[ConvertNeurons(dynamics="bifurcation"), rates, eigen], log_every_n_steps=1)
    t.fit(model, datamodule=TensorFrames())
    # 5 steps per epoch: rates read at global steps 0, 3 (epoch 0) and 6, 9 (epoch 1); Lightning's CSV rows
    # repeat a callback's last step value until it logs a new one
    rows = {int(row["step"]): row for row in csv_rows(t) if row.get("spikes/rate/net.layers.1")}
    assert set(rates.rate_history) == {"net.layers.1", "net.layers.5"}
    for layer, history in rates.rate_history.items():
        logged = [float(rows[step][f"spikes/rate/{layer}"]) for step in (0, 3, 6, 9)]
        assert len({float(row[f"spikes/rate/{layer}"]) for row in rows.values()}) == 4
        assert history == [(0, pytest.approx((logged[0] + logged[1]) / 2)), (1, pytest.approx((logged[2] + logged[3]) / 2))]
    # eigen_init spreads the eigenvalues over [-0.8, 0]: with tol 0.5, those above -0.5 count as conservative
    assert t.callback_metrics["eigen/net.layers.1/conservative"] > 0 and t.callback_metrics["eigen/net.layers.1/diffusive"] == 0


def csv_rows(t):
    import csv

    with open(f"{t.logger.log_dir}/metrics.csv") as handle:
        return list(csv.DictReader(handle))


def test_eigenvalue_summary_regimes():
    summary = eigenvalue_summary(torch.tensor([-0.5, -0.2, 0.0, 0.005, 0.1]), tol=1e-2)
    assert summary["dissipative"] == pytest.approx(0.4)
    assert summary["conservative"] == pytest.approx(0.4)
    assert summary["diffusive"] == pytest.approx(0.2)
    assert (summary["min"], summary["max"]) == (-0.5, pytest.approx(0.1))


@pytest.mark.slow
def test_best_val_accuracy_is_the_running_maximum_over_epochs_and_survives_a_checkpoint(tmp_path):
    """``val/acc_best`` after epoch e is max(val/acc of epochs 1..e): the figure the DVS papers report."""
    torch.manual_seed(0)
    model = bl.SpikingClassifier(small_net(), num_classes=3, loss="ce", optimizer=lambda p: torch.optim.Adam(p, lr=0.05))
    t = trainer(tmp_path, max_epochs=4, limit_train_batches=2, limit_val_batches=2, callbacks=[ResetStates()])
    t.fit(model, datamodule=TensorFrames())
    rows = [r for r in csv_rows(t) if r.get("val/acc")]
    accs, bests = [float(r["val/acc"]) for r in rows], [float(r["val/acc_best"]) for r in rows]
    assert len(accs) == 4 and bests == [max(accs[: e + 1]) for e in range(4)]  # no sanity-check value in it
    assert bests[-1] > accs[-1]  # this run's last epoch is not its best: the two figures differ
    assert model.best_val_acc == pytest.approx(max(accs)) and model.best_val_epoch == accs.index(max(accs)) + 1
    t.save_checkpoint(tmp_path / "m.ckpt")
    restored = bl.SpikingClassifier.load_from_checkpoint(tmp_path / "m.ckpt", net=small_net())
    assert (restored.best_val_acc, restored.best_val_epoch) == (model.best_val_acc, model.best_val_epoch)
