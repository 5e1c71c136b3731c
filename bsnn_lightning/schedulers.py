"""Learning-rate schedules the recipes use."""

from __future__ import annotations

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
