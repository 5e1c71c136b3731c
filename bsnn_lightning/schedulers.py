"""Learning-rate schedules the recipes use."""

from __future__ import annotations

import functools
import math

import torch


class WarmupCosine(torch.optim.lr_scheduler.LambdaLR):
    """Linear warm-up for ``warmup_epochs``, then cosine decay to ``min_factor`` x lr at ``max_epochs``.

    Stepped once per epoch. Epoch e (0-based) uses factor ``(e + 1) / (warmup_epochs + 1)`` during the
    warm-up, then ``min_factor + (1 - min_factor) * (1 + cos(pi * p)) / 2`` with
    ``p = (e - warmup_epochs) / (max_epochs - warmup_epochs)``.

    >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    >>> sched = WarmupCosine(opt, warmup_epochs=1, max_epochs=3)
    >>> [round(g["lr"], 3) for g in opt.param_groups]
    [0.5]
    """

    def __init__(self, optimizer, warmup_epochs: int = 0, max_epochs: int = 100, min_factor: float = 0.0) -> None:
        if warmup_epochs < 0 or max_epochs <= warmup_epochs:
            raise ValueError(f"expected 0 <= warmup_epochs < max_epochs, got {warmup_epochs} and {max_epochs}")
        if not 0.0 <= min_factor <= 1.0:
            raise ValueError(f"expected min_factor in [0, 1], got {min_factor}")
        self.warmup_epochs, self.max_epochs, self.min_factor = warmup_epochs, max_epochs, min_factor
        super().__init__(optimizer, self._factor)

    def _factor(self, epoch: int) -> float:
        if epoch < self.warmup_epochs:
            return (epoch + 1) / (self.warmup_epochs + 1)
        progress = min(1.0, (epoch - self.warmup_epochs) / (self.max_epochs - self.warmup_epochs))
        return self.min_factor + (1 - self.min_factor) * (1 + math.cos(math.pi * progress)) / 2


class LinearWarmupCosine(torch.optim.lr_scheduler.LambdaLR):
    """A linear warm-up stepped every iteration, then cosine decay to ``eta_min`` (as mmengine's
    ``LinearLR(convert_to_iter_based=True)`` followed by ``CosineAnnealingLR(begin=warmup_epochs)``).

    Stepped once per optimizer step (``interval = "step"``). With ``S`` steps per epoch, step ``i``
    (0-based) uses, for each parameter group with base learning rate ``lr``:

    * during the warm-up (``i < warmup_epochs * S``): ``lr * f``, ``f = start_factor + (1 - start_factor) *
      i / (warmup_epochs * S - 1)``: the last warm-up step reaches ``lr`` itself;
    * after it: ``eta_min + (lr - eta_min) * (1 + cos(pi * p)) / 2`` with ``p = (e - warmup_epochs) /
      (max_epochs - warmup_epochs)``, where ``e = i // S`` is the epoch when ``cosine_every="epoch"`` (the
      rate changes at epoch boundaries only) or ``e = i / S`` when ``cosine_every="step"``.

    ``steps_per_epoch`` may be left out and given later with :meth:`set_steps_per_epoch` (the
    :class:`~bsnn_lightning.SpikingClassifier` does, from the trainer); step 0 needs none.

    >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    >>> sched = LinearWarmupCosine(opt, warmup_epochs=1, max_epochs=3, start_factor=0.5, steps_per_epoch=3)
    >>> lrs = []
    >>> for _ in range(9):
    ...     lrs.append(round(opt.param_groups[0]["lr"], 3)); opt.step(); sched.step()
    >>> lrs
    [0.5, 0.75, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5]
    """

    interval = "step"

    def __init__(
        self,
        optimizer,
        warmup_epochs: int,
        max_epochs: int,
        start_factor: float = 1e-3,
        eta_min: float = 0.0,
        steps_per_epoch: int | None = None,
        cosine_every: str = "epoch",
    ) -> None:
        if isinstance(warmup_epochs, bool) or not isinstance(warmup_epochs, int) or warmup_epochs < 0:
            raise ValueError(f"expected warmup_epochs to be an int >= 0, got {warmup_epochs!r}")
        if isinstance(max_epochs, bool) or not isinstance(max_epochs, int) or max_epochs <= warmup_epochs:
            raise ValueError(f"expected max_epochs to be an int > warmup_epochs = {warmup_epochs}, got {max_epochs!r}")
        if not 0.0 < start_factor <= 1.0:
            raise ValueError(f"expected start_factor in (0, 1], got {start_factor}")
        if not (math.isfinite(eta_min) and eta_min >= 0.0):
            raise ValueError(f"expected eta_min >= 0, got {eta_min}")
        if cosine_every not in ("epoch", "step"):
            raise ValueError(f"expected cosine_every 'epoch' or 'step', got {cosine_every!r}")
        self.warmup_epochs, self.max_epochs = warmup_epochs, max_epochs
        self.start_factor, self.eta_min, self.cosine_every = float(start_factor), float(eta_min), cosine_every
        self.steps_per_epoch: int | None = None
        if steps_per_epoch is not None:
            self.set_steps_per_epoch(steps_per_epoch)
        bases = [group.get("initial_lr", group["lr"]) for group in optimizer.param_groups]
        for base in bases:
            if base < self.eta_min:
                raise ValueError(f"expected every group's learning rate >= eta_min = {eta_min}, got {base}")
        super().__init__(optimizer, [functools.partial(self._factor, base=base) for base in bases])

    def set_steps_per_epoch(self, steps_per_epoch: int) -> None:
        """The optimizer steps in one epoch (what a warm-up given in epochs is counted in)."""
        if isinstance(steps_per_epoch, bool) or not isinstance(steps_per_epoch, int) or steps_per_epoch < 1:
            raise ValueError(f"expected steps_per_epoch to be an int >= 1, got {steps_per_epoch!r}")
        self.steps_per_epoch = steps_per_epoch

    def _factor(self, step: int, base: float) -> float:
        if step == 0 and self.warmup_epochs:
            return self.start_factor
        per_epoch = self.steps_per_epoch
        if per_epoch is None:
            raise RuntimeError(
                "LinearWarmupCosine was stepped before it knew the steps per epoch: pass steps_per_epoch=..., "
                "call set_steps_per_epoch(n), or let SpikingClassifier configure it"
            )
        warmup_steps = self.warmup_epochs * per_epoch
        if step < warmup_steps:
            span = max(warmup_steps - 1, 1)
            return self.start_factor + (1.0 - self.start_factor) * step / span
        epoch = step // per_epoch if self.cosine_every == "epoch" else step / per_epoch
        progress = min(1.0, (epoch - self.warmup_epochs) / (self.max_epochs - self.warmup_epochs))
        lowest = self.eta_min / base if base > 0 else 0.0
        return lowest + (1.0 - lowest) * (1.0 + math.cos(math.pi * progress)) / 2.0
