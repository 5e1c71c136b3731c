"""``SpikingClassifier``: a LightningModule for any spiking network ``[T, N, ...] -> [T, N, C]``."""

from __future__ import annotations

import math
from typing import Callable, Iterable

import lightning as L
import torch
from torch import nn

from . import losses as losses_mod
from . import readouts as readouts_mod
from .convert import (
    PARAMETER_KINDS,
    check_optimized,
    decay_param_groups,
    firing_rates,
    materialize,
    reset_states,
    set_monitoring,
)
from .engine import checks
from .metrics import PerStepAccuracy

OptimizerFactory = Callable[[Iterable], torch.optim.Optimizer]
SchedulerFactory = Callable[[torch.optim.Optimizer], torch.optim.lr_scheduler.LRScheduler]


def _default_optimizer(params) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=1e-3)


class SpikingClassifier(L.LightningModule):
    """Trains and evaluates a spiking classifier; readout, loss, optimizer and scheduler come from config.

    Batches are ``(x, y)`` with ``x`` batch-first as a DataLoader collates it: ``[N, T, ...]`` for
    sequences (event frames), or ``[N, ...]`` static samples when ``static_steps`` is set, which are then
    presented at every one of ``static_steps`` steps. The network receives time-major ``[T, N, ...]`` and
    must return ``[T, N, num_classes]``; neuron states are reset before every forward pass. Training
    targets may be class indices ``[N]`` or soft targets ``[N, num_classes]`` (mixup / cutmix batches,
    :class:`bsnn_lightning.data.MixupCutmix`); ``train/acc`` then counts a hit on the target's top class.

    Args:
        net: the spiking network.
        num_classes: number of classes C.
        static_steps: repeat static inputs over this many steps; None for sequence inputs.
        loss: a name from :func:`bsnn_lightning.losses.get_loss` ("ce", "lts", "tet",
            "label_smoothed_tet") or an ``nn.Module`` taking ``(out_seq, target)``.
        loss_options: keyword arguments of the named loss (e.g. ``{"epsilon": 0.01}``).
        readout: how a prediction is read from ``out_seq`` ("mean", "lts"); default: the loss's own.
        optimizer: a callable from parameter groups to an optimizer (LightningCLI fills it from
            ``class_path``/``init_args``).
        lr_scheduler: a callable from the optimizer to a scheduler, stepped once per epoch, or once per
            optimizer step if the scheduler says ``interval = "step"`` (then, if it has
            ``set_steps_per_epoch``, it is told the trainer's optimizer steps per epoch, e.g.
            :class:`~bsnn_lightning.schedulers.LinearWarmupCosine`).
        no_decay: the kinds of parameters that get no weight decay (:data:`~bsnn_lightning.convert.PARAMETER_KINDS`:
            ``"neuron"``, ``"imp"``, ``"norm"``, ``"bias"``); default ``["neuron"]``, the neurons' own
            parameters (IMP, eigenvalues, thresholds). See :func:`~bsnn_lightning.convert.decay_param_groups`.
        not_optimized: kinds of parameters left out of the optimizer (they keep their initial values), e.g.
            ``["imp"]``; default none.

    Logged: ``train/loss``, ``train/acc``, ``val/loss``, ``val/acc``, ``val/acc_t{t}`` (accuracy of the
    output at each time step, the curve the IMP paper studies), ``val/rate/{layer}`` (firing rate of every
    neuron layer), and the same under ``test/``; and ``val/acc_best``, the best ``val/acc`` of the epochs so
    far (sanity checks excluded), kept as :attr:`best_val_acc` with its epoch :attr:`best_val_epoch` (counted
    from 1) and saved in checkpoints. The DVS DataModules validate on their test split, as the papers' codes
    do, so ``val/acc_best`` is the figure they publish: the best test accuracy over epochs.

    >>> from bsnn_lightning import LIFNeuron
    >>> model = SpikingClassifier(nn.Sequential(nn.Linear(4, 3), LIFNeuron()), num_classes=3, static_steps=2, loss="ce")
    >>> model(torch.rand(5, 4)).shape, model.readout  # [N, ...] static samples -> [T, N, C]; the loss's readout
    (torch.Size([2, 5, 3]), MeanOverTime())
    """

    def __init__(
        self,
        net: nn.Module,
        num_classes: int,
        static_steps: int | None = None,
        loss: str | nn.Module = "label_smoothed_tet",
        loss_options: dict | None = None,
        readout: str | None = None,
        optimizer: OptimizerFactory = _default_optimizer,
        lr_scheduler: SchedulerFactory | None = None,
        no_decay: list[str] | None = None,
        not_optimized: list[str] | None = None,
    ) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"expected num_classes >= 2, got {num_classes}")
        if static_steps is not None and static_steps < 1:
            raise ValueError(f"expected static_steps >= 1 (or None for sequence inputs), got {static_steps}")
        self.save_hyperparameters(ignore=["net", "loss"] if isinstance(loss, nn.Module) else ["net"])
        self.net = net
        self.num_classes = num_classes
        self.static_steps = static_steps
        if isinstance(loss, nn.Module):
            if loss_options:
                raise ValueError("loss_options apply to a loss given by name, not to an nn.Module")
            self.loss_fn = loss
        else:
            self.loss_fn = losses_mod.get_loss(loss, **(loss_options or {}))
        readout = readout or getattr(self.loss_fn, "readout", "mean")
        self.readout_name = readout
        self.readout = readouts_mod.get_readout(readout)
        self.optimizer_factory = optimizer
        self.scheduler_factory = lr_scheduler
        self.no_decay = ["neuron"] if no_decay is None else list(no_decay)
        self.not_optimized = [] if not_optimized is None else list(not_optimized)
        self._checked_after_first_step = False
        for name, kinds in (("no_decay", self.no_decay), ("not_optimized", self.not_optimized)):
            unknown = sorted(set(kinds) - set(PARAMETER_KINDS))
            if unknown:
                raise ValueError(f"expected {name} to name kinds from {list(PARAMETER_KINDS)}, got {unknown}")
        self.train_acc = _accuracy(num_classes)
        self.val_acc = _accuracy(num_classes)
        self.test_acc = _accuracy(num_classes)
        self.val_step_acc = PerStepAccuracy()
        self.test_step_acc = PerStepAccuracy()
        self.best_val_acc: float | None = None
        self.best_val_epoch: int | None = None

    # --- forward -----------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Batch-first input -> time-major output ``[T, N, num_classes]``."""
        seq = self.to_time_major(x)
        reset_states(self.net)
        out = self.net(seq)
        if out.dim() != 3 or out.shape[:2] != seq.shape[:2] or out.shape[2] != self.num_classes:
            raise ValueError(
                f"expected the network to map [T, N, ...] = {list(seq.shape)} to "
                f"[T, N, num_classes] = {[seq.shape[0], seq.shape[1], self.num_classes]}, got {list(out.shape)}"
            )
        return out

    def to_time_major(self, x: torch.Tensor) -> torch.Tensor:
        if self.static_steps is not None:
            return x.unsqueeze(0).expand(self.static_steps, *x.shape)
        if x.dim() < 3:
            raise ValueError(
                f"expected a batch of sequences [N, T, ...], got shape {list(x.shape)}; "
                "for static inputs [N, ...] set static_steps"
            )
        return x.transpose(0, 1)

    @property
    def example_input_array(self):
        """One small batch of the datamodule's shape, for dry runs (shape inference, model summary)."""
        if self._example_input_array is not None:
            return self._example_input_array
        dm = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        shape = getattr(dm, "input_shape", None)
        if shape is None:
            return None
        return torch.zeros(2, *shape)

    @example_input_array.setter
    def example_input_array(self, value):
        self._example_input_array = value

    # --- steps -------------------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        # a neuron's shaped parameters (IMP, eigenvalues) must exist before the optimizers are built (after this
        # hook), or they would never train: a neuron that still waits for its input shape (no ConvertNeurons
        # example batch) gets it from one dry forward of the datamodule's example batch
        example = self.example_input_array
        if example is not None:
            materialize(self.net, self.to_time_major(example.to(self.device)))

    def on_fit_start(self):
        checks.clear(self)  # what an interrupted fit of this model left unread is not this fit's

    def training_step(self, batch, batch_idx):
        x, y = batch
        with checks.owned_by(self):  # deferred value checks of this step are this model's
            out = self(x)
            loss = self.loss_fn(out, y)
        hard = y.argmax(dim=-1) if y.dim() == 2 and y.is_floating_point() else y  # soft targets: their top class
        self.train_acc(self.readout(out), hard)
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=y.shape[0])
        self.log("train/acc", self.train_acc, prog_bar=True, on_step=False, on_epoch=True, batch_size=y.shape[0])
        return loss

    def on_train_start(self):
        # every neuron parameter that is meant to train must be in an optimizer (not_optimized: left out on purpose)
        check_optimized(self, self.trainer.optimizers, self.not_optimized)
        self._checked_after_first_step = False

    def on_train_batch_end(self, outputs, batch, batch_idx):
        # value checks deferred on a GPU (see bsnn_lightning.engine.checks) are read once per logging interval
        checks.raise_deferred_every(self.global_step, self.trainer.log_every_n_steps, self)
        if not self._checked_after_first_step:  # parameters a neuron's first forward created
            self._checked_after_first_step = True
            check_optimized(self, self.trainer.optimizers, self.not_optimized)

    def on_train_epoch_end(self):
        checks.raise_deferred(self)

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, "val", self.val_acc, self.val_step_acc)

    def test_step(self, batch, batch_idx):
        self._evaluate(batch, "test", self.test_acc, self.test_step_acc)

    def predict_step(self, batch, batch_idx, dataloader_idx=0):
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        with checks.owned_by(self):
            return self.readout(self(x)).argmax(dim=-1)

    def _evaluate(self, batch, stage, acc, step_acc):
        x, y = batch
        set_monitoring(self.net, True)
        try:
            with checks.owned_by(self):
                out = self(x)
                loss = self.loss_fn(out, y)
            rates = firing_rates(self.net)
        finally:
            set_monitoring(self.net, False)
        n = y.shape[0]
        self.log(f"{stage}/loss", loss, prog_bar=True, batch_size=n, sync_dist=True)
        acc(self.readout(out), y)
        self.log(f"{stage}/acc", acc, prog_bar=True, batch_size=n)
        step_acc.update(out, y)
        for name, rate in rates.items():
            self.log(f"{stage}/rate/{name}", rate, batch_size=n, sync_dist=True)

    def on_validation_epoch_end(self):
        checks.raise_deferred(self)
        self._log_step_accuracy("val", self.val_step_acc)
        if self.trainer.sanity_checking or not self.val_acc.update_called:
            return
        acc = float(self.val_acc.compute())  # synced over processes; Lightning reuses the computed value
        if self.best_val_acc is None or acc > self.best_val_acc:
            self.best_val_acc, self.best_val_epoch = acc, self.current_epoch + 1
        self.log("val/acc_best", self.best_val_acc, prog_bar=True)

    def on_save_checkpoint(self, checkpoint):
        checkpoint["best_val_acc"] = {"acc": self.best_val_acc, "epoch": self.best_val_epoch}

    def on_load_checkpoint(self, checkpoint):
        best = checkpoint.get("best_val_acc", {})
        self.best_val_acc, self.best_val_epoch = best.get("acc"), best.get("epoch")

    def on_test_epoch_end(self):
        checks.raise_deferred(self)
        self._log_step_accuracy("test", self.test_step_acc)

    def _log_step_accuracy(self, stage, metric):
        if not metric.update_called:
            return
        for t, value in enumerate(metric.compute()):
            self.log(f"{stage}/acc_t{t + 1}", value)
        metric.reset()

    # --- optimisation ------------------------------------------------------------------------------------
    def configure_optimizers(self):
        groups = decay_param_groups(self, weight_decay=None, no_decay=self.no_decay, exclude=self.not_optimized)
        optimizer = self.optimizer_factory(groups)
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer)
        interval = getattr(scheduler, "interval", "epoch")
        if interval not in ("epoch", "step"):
            raise ValueError(f"expected the scheduler's interval to be 'epoch' or 'step', got {interval!r}")
        if interval == "step" and callable(getattr(scheduler, "set_steps_per_epoch", None)):
            scheduler.set_steps_per_epoch(self._steps_per_epoch())
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": interval}}

    def _steps_per_epoch(self) -> int:
        """Optimizer steps per training epoch, from the trainer (its batches, accumulation and devices)."""
        trainer = self.trainer
        epochs = trainer.max_epochs
        if epochs is None or epochs < 1:
            raise ValueError(
                f"a scheduler counted in epochs and stepped per iteration needs trainer.max_epochs >= 1, got {epochs}"
            )
        return max(1, math.ceil(trainer.estimated_stepping_batches / epochs))


def _accuracy(num_classes: int):
    from torchmetrics.classification import MulticlassAccuracy

    return MulticlassAccuracy(num_classes=num_classes, average="micro")
