"""SpikeMonitor's figures reach the Trainer's loggers (CSV as PNG files, TensorBoard as images), at the
frequency asked for, and show what the run did."""

import copy
import struct

import lightning as L
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import bsnn_lightning as bl
from bsnn_lightning.callbacks import ConvertNeurons, FiringRateMonitor, SpikeFigures, SpikeMonitor
from bsnn_lightning.engine import multistep
from bsnn_lightning.models import SpikingConvNet
from bsnn_lightning.figures.monitor import FIGURE_PIXELS

FIGURE_KINDS = {"spikes_raster": "raster", "spikes_membrane": "membrane", "spikes_rates": "rates_over_epochs", "eigen_spectrum": "eigen_monitor"}


def frames(n=48, steps=4):
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (n,), generator=g)
    x = (torch.rand(n, steps, 2, 12, 12, generator=g) < 0.1 + 0.1 * y.view(-1, 1, 1, 1, 1)).float()
    return DataLoader(TensorDataset(x, y), batch_size=16)


def fit(tmp_path, monitor, loggers, epochs=2, dynamics="bifurcation", lr=1e-3, extra=()):
    torch.manual_seed(0)
    model = bl.SpikingClassifier(
        SpikingConvNet(in_channels=2, num_classes=3, channels=(4,), hidden=8, input_size=(12, 12)), num_classes=3,
        optimizer=lambda params: torch.optim.SGD(params, lr=lr),
    )
    model.example_input_array = torch.zeros(2, 4, 2, 12, 12)
    trainer = L.Trainer(
        max_epochs=epochs, logger=loggers, default_root_dir=tmp_path, accelerator="cpu", devices=1,
        callbacks=[ConvertNeurons(dynamics=dynamics, imp="channel"), monitor, *extra], enable_progress_bar=False,
        enable_model_summary=False, enable_checkpointing=False, log_every_n_steps=1, limit_val_batches=0,
    )
    trainer.fit(model, frames())
    return trainer, model


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", data[16:24])


@pytest.mark.slow
def test_csv_gets_pngs_and_tensorboard_gets_images_every_epoch(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    csv = L.pytorch.loggers.CSVLogger(tmp_path / "csv")
    tb = L.pytorch.loggers.TensorBoardLogger(tmp_path / "tb")
    monitor = SpikeMonitor(every_n_steps=2, figures_every_n_epochs=1, figure_neurons=5)
    fit(tmp_path, monitor, [csv, tb])

    folder = tmp_path / "csv" / "lightning_logs" / "version_0" / "figures"
    expected = {f"{tag}_epoch{e}.png" for tag in FIGURE_KINDS for e in (0, 1)}
    assert {p.name for p in folder.iterdir()} == expected
    assert sorted(monitor.figure_paths) == sorted(str(folder / name) for name in expected)
    for path in folder.iterdir():
        tag = path.name.rsplit("_epoch", 1)[0]
        assert png_size(path) == FIGURE_PIXELS[FIGURE_KINDS[tag]], path.name
        assert 3_000 < path.stat().st_size < 200_000

    events = EventAccumulator(str(tmp_path / "tb" / "lightning_logs" / "version_0"), size_guidance={"images": 0})
    events.Reload()
    assert set(events.Tags()["images"]) == {"spikes/raster", "spikes/membrane", "spikes/rates", "eigen/spectrum"}
    raster = events.Images("spikes/raster")
    assert len(raster) == 2 and (raster[0].width, raster[0].height) == FIGURE_PIXELS["raster"]


@pytest.mark.slow
def test_figures_follow_the_frequency_and_are_off_by_default(tmp_path):
    every_second = SpikeMonitor(every_n_steps=2, figures_every_n_epochs=2)
    fit(tmp_path / "a", every_second, L.pytorch.loggers.CSVLogger(tmp_path / "a"), epochs=3)
    assert sorted(p.rsplit("/", 1)[-1] for p in every_second.figure_paths) == sorted(f"{tag}_epoch1.png" for tag in FIGURE_KINDS)

    default = SpikeMonitor(every_n_steps=2)
    fit(tmp_path / "b", default, L.pytorch.loggers.CSVLogger(tmp_path / "b"))
    assert default.figure_paths == [] and default.last_snapshot is None
    assert not list((tmp_path / "b").rglob("*.png"))


@pytest.mark.slow
def test_without_a_logger_the_pngs_go_to_the_root_dir(tmp_path):
    monitor = SpikeMonitor(every_n_steps=2, figures_every_n_epochs=1)
    fit(tmp_path, monitor, False, epochs=1)
    assert {p.name for p in (tmp_path / "figures").iterdir()} == {f"{tag}_epoch0.png" for tag in FIGURE_KINDS}


class ForwardRecorder(L.Callback):
    """Keeps each neuron's input (first sample), initial state and engine call of the forward pass of epoch
    1's first batch: what an independent recomputation of that pass needs."""

    def __init__(self):
        self.seen, self.handles = {}, []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.current_epoch == 1 and batch_idx == 0:
            for name, module, _ in bl.spiking_neurons(pl_module):
                self.handles.append(module.register_forward_pre_hook(self._hook(name)))

    def _hook(self, name):
        def hook(module, args):
            x0 = args[0][:, :1].detach().clone()
            dynamics, params = module.bsnn_engine(tuple(x0.shape[2:]))  # copies: the optimizer step changes them
            params = {k: v.detach().clone() if isinstance(v, torch.Tensor) else v for k, v in params.items()}
            self.seen[name] = (x0, module.initial_state(x0).detach().clone(), dynamics, params)

        return hook

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        for handle in self.handles:
            handle.remove()
        self.handles = []


def matches_a_neuron(trace, train, expected_v, expected_spikes):
    """Whether one column of the snapshot (membrane ``trace`` and spike ``train``, ``[T, 1]``) is the
    trajectory of one neuron of the recomputation (``[T, neurons]`` each)."""
    same_v = np.isclose(expected_v, trace, atol=1e-5).all(axis=0)
    same_spikes = (expected_spikes == train).all(axis=0)
    return bool((same_v & same_spikes).any())


@pytest.mark.slow
def test_membrane_traces_are_those_of_the_recorded_forward_pass(tmp_path):
    monitor = SpikeMonitor(every_n_steps=1, figures_every_n_epochs=1, figure_neurons=6)
    recorder = ForwardRecorder()
    # a large SGD step: the IMP and eigenvalues after the step differ clearly from those of the forward pass
    _, model = fit(tmp_path, monitor, L.pytorch.loggers.CSVLogger(tmp_path), lr=5.0, extra=[recorder])
    snapshot = monitor.last_snapshot
    assert snapshot["epoch"] == 1
    layers = [name for name, _, _ in bl.spiking_neurons(model)]
    assert set(snapshot["spikes"]) == set(snapshot["membrane"]) == set(recorder.seen) == set(layers)
    for layer in layers:
        assert snapshot["spikes"][layer].shape == snapshot["membrane"][layer].shape == (4, 6)
        assert snapshot["thresholds"][layer] == 1.0
        x0, v0, dynamics, params = recorder.seen[layer]
        out = multistep(x0, dynamics, params, v0, return_v_seq=True)
        expected_v, expected_spikes = out.v_seq[:, 0].flatten(1).numpy(), out.spikes[:, 0].flatten(1).numpy()
        for k in range(6):  # each column shown is one neuron's membrane and spikes in that forward pass
            column = slice(k, k + 1)
            assert matches_a_neuron(snapshot["membrane"][layer][:, column], snapshot["spikes"][layer][:, column], expected_v, expected_spikes), (layer, k)
        assert snapshot["spikes"][layer].any() == expected_spikes.any(), layer  # active neurons are shown first
    assert set(monitor.rate_history) == set(layers)
    for layer, points in monitor.rate_history.items():
        assert [epoch for epoch, _ in points] == [0, 1]
        assert all(0.0 <= rate <= 1.0 for _, rate in points)
    model(torch.zeros(2, 4, 2, 12, 12))
    assert bl.recordings(model) == {}  # monitoring is off after the recorded steps


class RecordingSpy(L.Callback):
    """After each forward call of one neuron layer during training: the global step, whether the call was
    recorded with its membrane, and the firing rate recorded (steps without a recording are not noted)."""

    def __init__(self, layer):
        self.layer, self.seen = layer, []

    def on_train_start(self, trainer, pl_module):
        def hook(module, args, output):
            recorded = bl.recordings(pl_module).get(self.layer)
            if recorded is not None:
                self.seen.append((trainer.global_step, recorded.membrane is not None, float(recorded.spikes.float().mean())))

        pl_module.get_submodule(self.layer).register_forward_hook(hook)


@pytest.mark.slow
@pytest.mark.parametrize("figures_first", [True, False])
def test_figures_and_rates_share_the_recording_in_either_order(tmp_path, figures_first):
    figures, rates, spy = SpikeFigures(every_n_epochs=1, neurons=3), FiringRateMonitor(every_n_steps=2), RecordingSpy("net.layers.1")
    first, second = (figures, rates) if figures_first else (rates, figures)
    fit(tmp_path, first, L.pytorch.loggers.CSVLogger(tmp_path), epochs=2, extra=[second, spy])
    # 3 batches per epoch: rates every second global step (0, 2, 4), figures from each epoch's first (0, 3)
    assert [(step, membrane) for step, membrane, _ in spy.seen] == [(0, True), (2, False), (3, True), (4, False)]
    r = [rate for _, _, rate in spy.seen]
    # the rates monitor read every recorded step, also those recorded for the figures
    assert rates.rate_history["net.layers.1"] == [(0, pytest.approx((r[0] + r[1]) / 2)), (1, pytest.approx((r[2] + r[3]) / 2))]
    assert {p.rsplit("/", 1)[-1] for p in figures.figure_paths} == {f"{tag}_epoch{e}.png" for tag in FIGURE_KINDS for e in (0, 1)}
    assert all(trace.shape == (4, 3) for trace in figures.last_snapshot["membrane"].values())


def test_monitor_state_survives_a_checkpoint_round_trip():
    monitor = SpikeMonitor(figures_every_n_epochs=1)
    monitor.rate_history = {"net.layers.1": [(0, 0.25), (1, 0.5)]}
    monitor.initial_eigenvalues = {"net.layers.1": [-0.5, 0.0]}
    restored = SpikeMonitor(figures_every_n_epochs=1)
    state = monitor.state_dict()
    assert set(state) == {"rate_history", "initial_eigenvalues"}  # the keys a checkpoint of the one-class monitor had
    restored.load_state_dict(state)
    assert restored.rate_history == monitor.rate_history
    assert restored.initial_eigenvalues == monitor.initial_eigenvalues


def test_first_sample_traces_pick_active_neurons_and_their_own_thresholds(tmp_path):
    from bsnn_lightning.callbacks import first_sample_traces
    from bsnn_lightning.figures.common import save_png
    from bsnn_lightning.figures.monitor import membrane_traces

    spikes = torch.zeros(3, 2, 2, 3)  # [T, N, C=2, 3]
    spikes[:, 0, 1, 1] = 1.0  # sample 0: flat neuron 4 (channel 1) fires at every step
    spikes[0, 0, 0, 0] = 1.0  # and neuron 0 (channel 0) once
    spikes[:, 1] = 1.0  # sample 1 is not shown
    membrane = torch.arange(36, dtype=torch.float32).reshape(3, 2, 2, 3)
    per_channel = torch.tensor([[0.5], [2.0]])
    records = {
        "per_channel": bl.Recording(spikes, membrane, per_channel, True),
        "unknown": bl.Recording(spikes, membrane, None, True),
        "one_step": bl.Recording(spikes[0], membrane[0], 1.0, False),  # a single step: no train to draw
    }
    traces = first_sample_traces(records, 2)
    assert set(traces["spikes"]) == set(traces["membrane"]) == {"per_channel", "unknown"}
    np.testing.assert_array_equal(traces["spikes"]["per_channel"], [[1, 1], [1, 0], [1, 0]])  # most active first
    np.testing.assert_array_equal(traces["membrane"]["per_channel"], [[4, 0], [16, 12], [28, 24]])
    np.testing.assert_array_equal(traces["thresholds"]["per_channel"], [2.0, 0.5])
    assert traces["thresholds"]["unknown"] is None
    fig = membrane_traces(traces["membrane"], traces["thresholds"], "test", spikes=traces["spikes"])
    assert png_size(save_png(fig, tmp_path / "membrane.png")) == FIGURE_PIXELS["membrane"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"figures_every_n_epochs": 0}, "expected figures_every_n_epochs >= 1 or None, got 0"),
        ({"figure_neurons": 0}, "expected figure_neurons >= 1, got 0"),
        ({"every_n_steps": 0}, "expected every_n_steps >= 1, got 0"),
    ],
)
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SpikeMonitor(**kwargs)


@pytest.mark.slow
@pytest.mark.parametrize(
    "convert, sequences",
    [
        ({"backend": "native"}, False),  # snnTorch's own Leaky, called once per step: no train, no engine membrane
        ({"dynamics": "bifurcation", "step_mode": "m"}, True),  # converted: one engine call per sequence
    ],
)
def test_snntorch_neurons_get_raster_and_membrane_when_they_run_whole_sequences(tmp_path, convert, sequences):
    pytest.importorskip("snntorch")
    from bsnn_lightning.models import SnnTorchConvNet

    torch.manual_seed(0)
    model = bl.SpikingClassifier(SnnTorchConvNet(in_channels=2, num_classes=3, channels=(4,), hidden=8, input_size=(12, 12)), num_classes=3)
    model.example_input_array = torch.zeros(2, 4, 2, 12, 12)
    monitor = SpikeMonitor(every_n_steps=1, figures_every_n_epochs=1)
    trainer = L.Trainer(
        max_epochs=1, logger=L.pytorch.loggers.CSVLogger(tmp_path), accelerator="cpu", devices=1,
        callbacks=[ConvertNeurons(**convert), monitor], enable_progress_bar=False, enable_model_summary=False,
        enable_checkpointing=False, limit_val_batches=0,
    )
    trainer.fit(model, frames())
    names = {p.rsplit("/", 1)[-1] for p in monitor.figure_paths}
    assert ("spikes_raster_epoch0.png" in names) == sequences
    assert ("spikes_membrane_epoch0.png" in names) == sequences
    assert "spikes_rates_epoch0.png" in names
    if sequences:
        snapshot = monitor.last_snapshot
        assert set(snapshot["membrane"]) == set(snapshot["spikes"]) == {name for name, _, _ in bl.spiking_neurons(model)}
        assert all(train.shape == (4, 8) for train in snapshot["spikes"].values())
        assert all(trace.shape == (4, 8) for trace in snapshot["membrane"].values())


@pytest.mark.slow
def test_converted_spikingjelly_membrane_is_spikingjellys_own(tmp_path):
    """The membrane figure of a converted SpikingJelly network shows what SpikingJelly itself computes for
    those neurons (``store_v_seq``: the potential after each step's reset)."""
    pytest.importorskip("spikingjelly")
    from spikingjelly.activation_based import neuron

    from bsnn_lightning.models import SpikingJellyConvNet

    torch.manual_seed(0)
    net = SpikingJellyConvNet(in_channels=2, num_classes=3, channels=(4,), hidden=8, input_size=(12, 12), v_reset=0.0)
    native = copy.deepcopy(net)
    for node in native.modules():
        if isinstance(node, neuron.LIFNode):
            node.store_v_seq = True
    # lr 0: the weights of the recorded forward pass are those of the native copy
    model = bl.SpikingClassifier(net, num_classes=3, optimizer=lambda params: torch.optim.SGD(params, lr=0.0))
    figures = SpikeFigures(every_n_epochs=1, neurons=5)
    trainer = L.Trainer(
        max_epochs=1, logger=L.pytorch.loggers.CSVLogger(tmp_path), accelerator="cpu", devices=1,
        callbacks=[ConvertNeurons(example_input=torch.zeros(2, 4, 2, 12, 12)), figures], enable_progress_bar=False,
        enable_model_summary=False, enable_checkpointing=False, limit_val_batches=0,
    )
    trainer.fit(model, frames())
    assert "spikes_membrane_epoch0.png" in {p.rsplit("/", 1)[-1] for p in figures.figure_paths}

    nodes = {f"net.{name}": m for name, m in native.named_modules() if isinstance(m, neuron.LIFNode)}
    native_spikes = {}
    for layer, node in nodes.items():
        node.register_forward_hook(lambda m, args, out, layer=layer: native_spikes.__setitem__(layer, out.detach()))
    x, _ = next(iter(frames()))
    native.train()
    native(x.transpose(0, 1))  # the first batch again, batch norm on its statistics as in training
    snapshot = figures.last_snapshot
    assert set(snapshot["membrane"]) == set(snapshot["spikes"]) == set(nodes) and len(nodes) == 2
    for layer, node in nodes.items():
        expected_v = node.v_seq[:, 0].flatten(1).detach().numpy()
        expected_spikes = native_spikes[layer][:, 0].flatten(1).numpy()
        assert snapshot["membrane"][layer].shape == snapshot["spikes"][layer].shape == (4, 5)
        assert snapshot["thresholds"][layer] == 1.0
        for k in range(5):
            column = slice(k, k + 1)
            assert matches_a_neuron(snapshot["membrane"][layer][:, column], snapshot["spikes"][layer][:, column], expected_v, expected_spikes), (layer, k)
