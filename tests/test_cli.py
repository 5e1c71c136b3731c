"""The ``bsnn`` command runs the recipes."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bsnn_lightning.cli import build_cli, main

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = str(ROOT / "recipes" / "quickstart.yaml")

pytestmark = pytest.mark.filterwarnings("ignore:LightningCLI's args parameter is intended")


@pytest.mark.slow
def test_quickstart_recipe_fast_dev_run(tmp_path):
    cli = build_cli(
        [
            "fit",
            "--config", QUICKSTART,
            "--trainer.fast_dev_run=true",
            f"--trainer.default_root_dir={tmp_path}",
            f"--trainer.logger.init_args.save_dir={tmp_path}",
            f"--data.init_args.cache_dir={tmp_path / 'cache'}",
            "--data.init_args.limit=120",
        ]
    )
    assert cli.trainer.state.finished
    metrics = cli.trainer.callback_metrics
    assert {"train/loss", "val/acc", "val/acc_t8"} <= set(metrics)
    neurons = [m for m in cli.model.modules() if type(m).__name__ == "BifurcationNeuron"]
    assert len(neurons) == 3 and all(n.imp is not None and n.imp.shape[0] > 1 for n in neurons)


@pytest.mark.slow
def test_print_config_from_the_console_command(tmp_path):
    bsnn = shutil.which("bsnn")
    assert bsnn is not None, "the bsnn console command is not installed (pip install -e .)"
    out = subprocess.run(
        [bsnn, "fit", "--config", QUICKSTART, "--print_config"],
        capture_output=True, text=True, check=True, cwd=tmp_path,
    ).stdout
    assert "class_path: bsnn_lightning.SpikingClassifier" in out
    assert "class_path: bsnn_lightning.callbacks.ConvertNeurons" in out
    assert "epsilon: 0.01" in out


def test_unknown_option_is_refused(tmp_path):
    with pytest.raises(SystemExit):
        build_cli(["fit", "--config", QUICKSTART, "--model.init_args.no_such_option=1"])


@pytest.mark.slow
def test_console_command_exits_zero_after_a_run(tmp_path):
    """A successful ``bsnn fit`` must exit 0 (scripts and schedulers check the exit status)."""
    bsnn = shutil.which("bsnn")
    assert bsnn is not None, "the bsnn console command is not installed (pip install -e .)"
    result = subprocess.run(
        [
            bsnn, "fit", "--config", QUICKSTART,
            "--trainer.fast_dev_run=true",
            f"--trainer.default_root_dir={tmp_path}",
            f"--trainer.logger.init_args.save_dir={tmp_path}",
            f"--data.init_args.cache_dir={tmp_path / 'cache'}",
            "--data.init_args.limit=64",
        ],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "BsnnCLI object" not in result.stdout + result.stderr


@pytest.mark.slow
def test_fit_prints_the_best_validation_accuracy_over_epochs_after_the_last_weights_test(tmp_path, capsys):
    cli = build_cli(
        [
            "fit",
            "--config", QUICKSTART,
            "--trainer.max_epochs=2", "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=2",
            "--trainer.limit_test_batches=2",
            f"--trainer.default_root_dir={tmp_path}",
            f"--trainer.logger.init_args.save_dir={tmp_path}",
            f"--data.init_args.cache_dir={tmp_path / 'cache'}",
            "--data.init_args.limit=120",
        ]
    )
    out = capsys.readouterr().out
    model = cli.model
    assert model.best_val_epoch in (1, 2)
    assert f"best val/acc over epochs: {model.best_val_acc:.4f} (epoch {model.best_val_epoch} of 2)" in out
    assert out.index("test/acc") < out.index("best val/acc over epochs")  # printed after the test of the last weights


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without a GPU")
def test_a_gpu_recipe_without_a_gpu_says_how_to_run_on_the_cpu(capsys):
    """README: the DVS recipes ask for a GPU; without one, bsnn says so and names the CPU overrides."""
    code = main(["fit", "--config", str(ROOT / "recipes" / "cifar10dvs48_vgg11_imp_tets.yaml")])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("bsnn: error: this run asks for a GPU (trainer.accelerator: gpu)")
    assert "--trainer.accelerator cpu --trainer.precision 32-true" in err


@pytest.mark.slow
def test_a_missing_dataset_is_one_message_without_a_traceback(tmp_path):
    """A known condition (here: the dataset's archives are not there) ends ``bsnn`` with exit status 1 and the
    message that says where to put them, and no traceback."""
    result = subprocess.run(
        [
            sys.executable, "-m", "bsnn_lightning.cli", "fit", "--config", str(ROOT / "recipes" / "nmnist_bsnn.yaml"),
            f"--data.init_args.root={tmp_path / 'N-MNIST'}", "--data.init_args.download=false",
            "--trainer.accelerator=cpu", "--trainer.logger=false", f"--trainer.default_root_dir={tmp_path}",
        ],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    message = result.stderr[result.stderr.index("bsnn: error: "):]
    assert message.startswith("bsnn: error: N-MNIST: 2 archive(s) missing from")
    assert f"put it, under this name, at {tmp_path / 'N-MNIST' / 'Train.zip'}" in message
