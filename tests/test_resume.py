"""``bsnn fit --config RECIPE --ckpt_path last`` after an interrupted run resumes it: every recipe keeps its
checkpoints in one fixed folder (so ``last`` finds them whatever logger version a run gets) with a ``last.ckpt``
written at every epoch's end, and a real fit of
the quickstart recipe, interrupted by a real SIGINT in its second epoch and resumed, ends at the same epoch
and step with the same weights and optimizer state, bit for bit, as the same fit left alone."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted((ROOT / "recipes").glob("*.yaml"))


@pytest.mark.parametrize("recipe", RECIPES, ids=[p.stem for p in RECIPES])
def test_every_recipe_keeps_its_checkpoints_in_one_fixed_folder(recipe):
    """One fixed folder, whatever logger version a run gets; in it the best epoch's checkpoint and ``last.ckpt``
    of every epoch's end. (Lightning's ``save_last=True`` beside a monitor writes ``last.ckpt`` only when the
    monitored value improves, so ``--ckpt_path last`` would go back to the best epoch, not the last.)"""
    trainer = yaml.safe_load(recipe.read_text())["trainer"]
    checkpoints = [c.get("init_args", {}) for c in trainer["callbacks"] if c["class_path"].endswith("ModelCheckpoint")]
    folder = f"{trainer['default_root_dir']}/checkpoints"
    assert [c.get("dirpath") for c in checkpoints] == [folder, folder]
    best, last = checkpoints
    assert (best.get("monitor"), best.get("mode")) == ("val/acc", "max") and not best.get("save_last")
    assert last == {"dirpath": folder, "filename": "last"}  # no monitor: its one file is the latest epoch's


def _fit(cwd: Path, cache: Path, *extra: str) -> subprocess.CompletedProcess:
    """``bsnn fit`` on the quickstart recipe, shortened to 3 epochs of 3 batches, run in ``cwd``."""
    args = [
        sys.executable, "-m", "bsnn_lightning.cli", "fit", "--config", str(ROOT / "recipes" / "quickstart.yaml"),
        "--trainer.max_epochs", "3", "--trainer.limit_train_batches", "3", "--trainer.limit_val_batches", "1",
        "--trainer.enable_progress_bar", "false", "--test_after_fit", "false",
        "--data.cache_dir", str(cache), "--data.limit", "200", *extra,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests" / "scripts")])}
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def _step_log(path: Path, interrupt_at: int | None = None) -> str:
    init = {"path": str(path), "interrupt_at": interrupt_at}
    return "--trainer.callbacks+=" + yaml.safe_dump({"class_path": "step_log.StepLog", "init_args": init}, default_flow_style=True).strip()


@pytest.mark.slow  # three short fits, each in a fresh process
def test_an_interrupted_fit_resumes_to_the_same_steps_and_weights(tmp_path):
    cache = tmp_path / "cache"
    whole = _fit(tmp_path / "whole", cache)
    assert whole.returncode == 0, whole.stderr[-3000:]

    steps = tmp_path / "steps.txt"
    cut = _fit(tmp_path / "cut", cache, _step_log(steps, interrupt_at=5))  # epoch 1 = steps 3, 4, 5
    assert cut.returncode == 1 and "Detected KeyboardInterrupt" in cut.stderr + cut.stdout, cut.stderr[-3000:]
    assert steps.read_text().split() == ["0", "1", "2", "3", "4"]
    steps.unlink()
    resumed = _fit(tmp_path / "cut", cache, _step_log(steps), "--ckpt_path", "last")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    # resumed from the end of epoch 0 (the last checkpoint), not from step 0
    assert steps.read_text().split() == ["3", "4", "5", "6", "7", "8"]

    a = torch.load(tmp_path / "whole/runs/quickstart/checkpoints/last.ckpt", map_location="cpu", weights_only=False)
    b = torch.load(tmp_path / "cut/runs/quickstart/checkpoints/last.ckpt", map_location="cpu", weights_only=False)
    assert (a["epoch"], a["global_step"]) == (b["epoch"], b["global_step"]) == (2, 9)
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for name, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][name]), name
    for (ka, va), (kb, vb) in zip(a["optimizer_states"][0]["state"].items(), b["optimizer_states"][0]["state"].items()):
        assert ka == kb and all(torch.equal(va[k], vb[k]) for k in va), ka
    assert a["lr_schedulers"] == b["lr_schedulers"]
