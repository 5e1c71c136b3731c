"""Batch-level mixing of event frames: mixup (Zhang et al., ICLR 2018) and cutmix (Yun et al., ICCV 2019).

:class:`MixupCutmix` works on ``x[N, T, 2, H, W]`` (any ``[N, ..., H, W]``): each sample is mixed with
the batch reversed (sample ``i`` with ``N-1-i``), and its integer label becomes a soft target
``lam * onehot(y_i) + (1 - lam) * onehot(y_{N-1-i})``, rows of ``[N, num_classes]`` that sum to one.
Mixup blends whole samples with ``lam ~ Beta(a, a)``; cutmix pastes one box (the same box for all time
steps) whose area is ``1 - lam`` of the frame, ``lam`` then set to the exact kept area. The losses of
:mod:`bsnn_lightning.losses` accept such soft targets.

A DVS DataModule takes one as ``mix=`` and mixes training batches on the device after transfer,
giving it its own ``num_classes``. Per-sample transforms (flip, roll, ...) are in
:mod:`bsnn_lightning.data.augment`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .loading import check_int, check_probability

__all__ = ["MixupCutmix", "cutmix_box"]


class MixupCutmix:
    """Mix a batch ``(x[N, ..., H, W], y[N])`` into ``(x', soft targets [N, num_classes])``.

    With probability ``prob`` the batch is mixed, by cutmix with probability ``switch_prob`` when
    both are enabled (else by whichever is), otherwise it is returned with one-hot targets. An
    ``alpha`` of 0 disables that method; the defaults are timm's.

    Args:
        mixup_alpha: Beta(a, a) parameter of mixup's ``lam``.
        cutmix_alpha: Beta(a, a) parameter of cutmix's target area.
        prob: probability of mixing a batch at all.
        switch_prob: probability of cutmix rather than mixup when both are enabled.

    Call: ``mix(x, y, num_classes)``, ``num_classes`` the width of the soft targets.
    """

    def __init__(
        self,
        mixup_alpha: float = 0.8,
        cutmix_alpha: float = 1.0,
        prob: float = 1.0,
        switch_prob: float = 0.5,
    ) -> None:
        for name, value in (("mixup_alpha", mixup_alpha), ("cutmix_alpha", cutmix_alpha)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value >= 0):
                raise ValueError(f"expected {name} to be a number >= 0, got {value!r}")
        check_probability("prob", prob)
        check_probability("switch_prob", switch_prob)
        if mixup_alpha == 0 and cutmix_alpha == 0:
            raise ValueError("expected mixup_alpha > 0 or cutmix_alpha > 0 (both are 0: nothing to mix)")
        self.mixup_alpha, self.cutmix_alpha = float(mixup_alpha), float(cutmix_alpha)
        self.prob, self.switch_prob = float(prob), float(switch_prob)

    def __call__(self, x: Tensor, y: Tensor, num_classes: int) -> tuple[Tensor, Tensor]:
        check_int("num_classes", num_classes, 2)
        if x.dim() < 3 or y.dim() != 1 or x.shape[0] != y.shape[0]:
            raise ValueError(
                f"expected x [N, ..., H, W] and integer labels y [N], got {list(x.shape)} and {list(y.shape)}"
            )
        onehot = torch.nn.functional.one_hot(y.long(), num_classes).to(torch.float32)
        if torch.rand(()).item() >= self.prob:
            return x, onehot
        use_cutmix = self.cutmix_alpha > 0 and (self.mixup_alpha == 0 or torch.rand(()).item() < self.switch_prob)
        partner = x.flip(0)
        if use_cutmix:
            lam = _beta(self.cutmix_alpha)
            (y0, y1), (x0, x1) = cutmix_box(x.shape[-2:], lam)
            mixed = x.clone()
            mixed[..., y0:y1, x0:x1] = partner[..., y0:y1, x0:x1]
            lam = 1.0 - (y1 - y0) * (x1 - x0) / (x.shape[-2] * x.shape[-1])
        else:
            lam = _beta(self.mixup_alpha)
            mixed = x * lam + partner * (1.0 - lam)
        return mixed, onehot * lam + onehot.flip(0) * (1.0 - lam)

    def __repr__(self) -> str:
        return (
            f"MixupCutmix(mixup_alpha={self.mixup_alpha}, cutmix_alpha={self.cutmix_alpha}, "
            f"prob={self.prob}, switch_prob={self.switch_prob})"
        )


def cutmix_box(size, lam: float, generator: torch.Generator | None = None) -> tuple[tuple[int, int], tuple[int, int]]:
    """A box ``((y0, y1), (x0, x1))`` of about ``1 - lam`` of an ``H x W`` frame, centred at random.

    Sides ``int(H sqrt(1 - lam))`` and ``int(W sqrt(1 - lam))``, clipped at the frame's edges (so
    the area can come out smaller; the caller recomputes ``lam`` from the box).
    """
    height, width = int(size[0]), int(size[1])
    ratio = math.sqrt(1.0 - lam)
    cut_h, cut_w = int(height * ratio), int(width * ratio)
    cy = int(torch.randint(0, height, (), generator=generator))
    cx = int(torch.randint(0, width, (), generator=generator))
    y0, y1 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, height)
    x0, x1 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, width)
    return (y0, y1), (x0, x1)


def _beta(alpha: float) -> float:
    return float(torch.distributions.Beta(alpha, alpha).sample())
