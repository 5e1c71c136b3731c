"""Warnings name the user's line, however the package reaches them (directly, through nn.Sequential, through
the ConvertNeurons callback inside a Trainer)."""

import warnings

import lightning as L
import pytest
import torch
from torch import nn

import bsnn_lightning as bl
from bsnn_lightning.callbacks import ConvertNeurons

pytest.importorskip("spikingjelly.activation_based")
from spikingjelly.activation_based import neuron, surrogate  # noqa: E402


def _caught(action):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        action()
    return [w for w in caught if issubclass(w.category, UserWarning)]


def _sj_net_with_custom_surrogate():
    return nn.Sequential(nn.Linear(4, 3), neuron.LIFNode(surrogate_function=surrogate.Erf(), step_mode="m"))


def test_autograd_surrogate_warning_points_at_the_convert_call():
    net = _sj_net_with_custom_surrogate()
    caught = _caught(lambda: bl.convert(net, backend="torch"))
    messages = [w for w in caught if "no built-in formula" in str(w.message)]
    assert len(messages) == 1 and messages[0].filename == __file__


def test_optimizer_warning_points_at_the_users_forward_call_even_inside_a_sequential():
    net = nn.Sequential(nn.Linear(4, 3), bl.BifurcationNeuron())
    caught = _caught(lambda: net(torch.rand(2, 5, 4)))
    messages = [w for w in caught if "optimizer built before" in str(w.message)]
    assert len(messages) == 1 and messages[0].filename == __file__


class _Module(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = _sj_net_with_custom_surrogate()

    def training_step(self, batch, batch_idx):
        return self.net(batch[0]).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.rand(4, 2, 4)), batch_size=2)


def test_warning_through_the_callback_points_at_the_fit_call(tmp_path):
    trainer = L.Trainer(
        callbacks=[ConvertNeurons(backend="torch")], max_steps=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
    )  # fmt: skip
    caught = _caught(lambda: trainer.fit(_Module()))
    messages = [w for w in caught if "no built-in formula" in str(w.message)]
    assert len(messages) == 1 and messages[0].filename == __file__
