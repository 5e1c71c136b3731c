"""MemoryOptimization (bsnn_lightning/memory.py): SpikingJelly's memopt inside a real Trainer, after
ConvertNeurons, trains a converted model to the same parameters as without it; what it cannot do it refuses."""

import copy

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import bsnn_lightning as bl
from bsnn_lightning.callbacks import ConvertNeurons, ResetStates
from bsnn_lightning.memory import MemoryOptimization, neuron_block_types

pytest.importorskip("spikingjelly.activation_based")
from bsnn_lightning.models import SpikingJellyConvNet  # noqa: E402

CASES = [
    pytest.param("lif", {}, None, id="lif", marks=pytest.mark.slow),
    pytest.param("bifurcation", {}, "neuron", id="diagonal-imp"),
    pytest.param("bifurcation", {"structure": "coupled"}, "channel", id="coupled-imp", marks=pytest.mark.slow),
]


class Frames(L.LightningDataModule):
    """32 random event-frame sequences [N, T=4, 2, 8, 8], 3 classes, batches of 16."""

    def setup(self, stage):
        g = torch.Generator().manual_seed(0)
        self.y = torch.randint(0, 3, (32,), generator=g)
        self.x = (torch.rand(32, 4, 2, 8, 8, generator=g) < 0.3).float()

    def train_dataloader(self):
        return DataLoader(TensorDataset(self.x, self.y), batch_size=16)


def classifier():
    torch.manual_seed(0)
    net = SpikingJellyConvNet(in_channels=2, num_classes=3, channels=(4,), hidden=8, input_size=(8, 8), v_reset=0.0)
    return bl.SpikingClassifier(net, num_classes=3, loss="tet", optimizer=lambda params: torch.optim.SGD(params, lr=0.5))


def fit(tmp_path, model, callbacks):
    trainer = L.Trainer(
        max_epochs=1, logger=False, enable_progress_bar=False, enable_checkpointing=False, enable_model_summary=False,
        accelerator="cpu", devices=1, callbacks=callbacks, default_root_dir=tmp_path,
    )  # fmt: skip
    torch.manual_seed(1)  # the new parameters' initial values (drawn at setup)
    trainer.fit(model, datamodule=Frames())
    return {k.replace("_checkpoint_wrapped_module.", ""): v for k, v in model.state_dict().items()}


EXAMPLE = (torch.rand(16, 4, 2, 8, 8) < 0.3).float()


@pytest.mark.parametrize("dynamics, options, imp", CASES)
def test_memopt_trains_a_converted_model_to_the_same_parameters(tmp_path, dynamics, options, imp):
    def convert():
        return ConvertNeurons(dynamics=dynamics, imp=imp, backend="torch", example_input=EXAMPLE, **options)

    plain, optimized = classifier(), classifier()
    expected = fit(tmp_path, plain, [convert(), ResetStates()])
    got = fit(tmp_path, optimized, [convert(), MemoryOptimization(level=1, example_input=EXAMPLE), ResetStates()])
    wrappers = [m for m in optimized.modules() if type(m).__name__ == "CheckpointWrapper"]
    assert len(wrappers) >= 4  # the conv, norm, neurons and linear layers of the net's Sequential
    assert got.keys() == expected.keys()
    changed = [k for k in expected if not torch.equal(expected[k], classifier().state_dict().get(k, expected[k]))]
    assert changed  # training moved the parameters
    for key in expected:
        assert torch.equal(got[key], expected[key]), key


def test_it_must_come_after_convert_neurons(tmp_path):
    with pytest.raises(ValueError, match="must come after ConvertNeurons"):
        fit(tmp_path, classifier(), [MemoryOptimization(example_input=EXAMPLE), ConvertNeurons(dynamics="lif", backend="torch")])


def test_neurons_that_keep_state_outside_spikingjellys_memories_are_refused(tmp_path):
    from bsnn_lightning.models import SpikingConvNet

    net = SpikingConvNet(in_channels=2, num_classes=3, channels=(4,), hidden=8, input_size=(8, 8))
    model = bl.SpikingClassifier(net, num_classes=3)
    with pytest.raises(ValueError, match="keep their state\\s+as plain attributes"):
        fit(tmp_path, model, [ConvertNeurons(dynamics="bifurcation", example_input=EXAMPLE), MemoryOptimization(example_input=EXAMPLE)])


def test_arguments_are_checked_and_block_types_found():
    with pytest.raises(ValueError, match="expected memopt level"):
        MemoryOptimization(level=5)
    with pytest.raises(ValueError, match="expected budget"):
        MemoryOptimization(budget="small")
    net = copy.deepcopy(classifier().net)
    names = {t.__name__ for t in neuron_block_types(net)}
    assert {"Conv2d", "BatchNorm2d", "LIFNode", "MaxPool2d", "Flatten", "Linear"} <= names
