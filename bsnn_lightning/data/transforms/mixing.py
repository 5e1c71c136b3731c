"""Batch-level mixing of event frames: mixup (Zhang et al., ICLR 2018) and cutmix (Yun et al., ICCV 2019).

:class:`MixupCutmix` works on ``x[N, T, 2, H, W]`` (any ``[N, ..., H, W]``): each sample is mixed with a
partner -- by default the batch reversed (sample ``i`` with ``N-1-i``), or a random permutation of the batch
(``partner="permutation"``, mmpretrain's ``torch.randperm``) -- and its integer label becomes a soft target
``lam * onehot(y_i) + (1 - lam) * onehot(y_partner)``, rows of ``[N, num_classes]`` that sum to one.
Mixup blends whole samples with ``lam ~ Beta(a, a)``; cutmix pastes one box (the same box for all time
steps) whose area is ``1 - lam`` of the frame, ``lam`` then set to the box's area after clipping at the
frame's edges (mmpretrain's and timm's ``correct_lam``). The losses of :mod:`bsnn_lightning.losses` accept
such soft targets.

Where the box falls (``cutmix_on``):

* ``"hw"`` (default): on the frame, rows ``y0:y1`` of H and columns ``x0:x1`` of W, at every time step and
  polarity.
* ``"polarity_h"``: where mmpretrain 1.0.2's ``CutMix`` puts it on a ``[B, T, C, H, W]`` batch, as the IMP
  paper's released code (amazing-cls ``DVSPreprocessor``) calls it before moving T first. ``CutMix.mix`` draws
  the box on ``shape[-2:] = (H, W)`` but pastes ``x[:, :, y0:y1, x0:x1]``, so its rows fall on the polarity
  axis C and its columns on H, every W: the input changes only when ``y0 < C`` (about 35% of cutmix batches
  at 128 x 128 with alpha 1), and then in full-width bands of rows, while the labels are mixed by the nominal
  box's area ``(y1 - y0)(x1 - x0) / (H W)`` in every batch. Needs a 5-D batch.

A DVS DataModule takes one as ``mix=`` and mixes training batches on the device after transfer,
giving it its own ``num_classes``. Per-sample transforms (flip, roll, ...) are in
:mod:`bsnn_lightning.data.transforms`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..loading import check_choice, check_int, check_probability

__all__ = ["CUTMIX_ON", "PARTNERS", "MixupCutmix", "cutmix_box", "paste_box"]

CUTMIX_ON = ("hw", "polarity_h")
"""Where cutmix's box falls: on H x W, or on polarity x H as mmpretrain's ``CutMix`` on ``[B, T, C, H, W]``."""
PARTNERS = ("reversed", "permutation")
"""Each sample's mixing partner: the batch reversed, or a random permutation (mmpretrain's)."""


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
        partner: ``"reversed"`` (sample ``i`` with ``N-1-i``) or ``"permutation"`` (a random
            permutation drawn per batch, as mmpretrain's ``Mixup`` and ``CutMix``; a sample may draw itself).
        cutmix_on: ``"hw"`` (the box on H x W) or ``"polarity_h"`` (mmpretrain's box on a
            ``[N, T, C, H, W]`` batch: its rows on C, its columns on H; see the module docstring).

    Call: ``mix(x, y, num_classes)``, ``num_classes`` the width of the soft targets.

    Example:
        >>> import torch
        >>> _ = torch.manual_seed(0)
        >>> mix = MixupCutmix(mixup_alpha=0.0, cutmix_alpha=1.0)  # cutmix only
        >>> x, y = torch.stack([torch.zeros(2, 4, 4), torch.ones(2, 4, 4)]), torch.tensor([0, 1])
        >>> mixed, targets = mix(x, y, num_classes=3)
        >>> mixed.shape
        torch.Size([2, 2, 4, 4])
        >>> targets  # a box of a quarter of the frame came from the partner
        tensor([[0.7500, 0.2500, 0.0000],
                [0.2500, 0.7500, 0.0000]])
        >>> MixupCutmix(mixup_alpha=0.0, cutmix_alpha=0.0)
        Traceback (most recent call last):
            ...
        ValueError: expected mixup_alpha > 0 or cutmix_alpha > 0 (both are 0: nothing to mix)
    """

    def __init__(
        self,
        mixup_alpha: float = 0.8,
        cutmix_alpha: float = 1.0,
        prob: float = 1.0,
        switch_prob: float = 0.5,
        partner: str = "reversed",
        cutmix_on: str = "hw",
    ) -> None:
        for name, value in (("mixup_alpha", mixup_alpha), ("cutmix_alpha", cutmix_alpha)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value >= 0):
                raise ValueError(f"expected {name} to be a number >= 0, got {value!r}")
        check_probability("prob", prob)
        check_probability("switch_prob", switch_prob)
        check_choice("partner", partner, PARTNERS)
        check_choice("cutmix_on", cutmix_on, CUTMIX_ON)
        if mixup_alpha == 0 and cutmix_alpha == 0:
            raise ValueError("expected mixup_alpha > 0 or cutmix_alpha > 0 (both are 0: nothing to mix)")
        self.mixup_alpha, self.cutmix_alpha = float(mixup_alpha), float(cutmix_alpha)
        self.prob, self.switch_prob = float(prob), float(switch_prob)
        self.partner, self.cutmix_on = partner, cutmix_on

    def __call__(self, x: Tensor, y: Tensor, num_classes: int) -> tuple[Tensor, Tensor]:
        check_int("num_classes", num_classes, 2)
        if x.dim() < 3 or y.dim() != 1 or x.shape[0] != y.shape[0]:
            raise ValueError(
                f"expected x [N, ..., H, W] and integer labels y [N], got {list(x.shape)} and {list(y.shape)}"
            )
        if self.cutmix_alpha > 0 and self.cutmix_on == "polarity_h" and x.dim() != 5:
            raise ValueError(f"cutmix_on='polarity_h' expected x [N, T, C, H, W], got {list(x.shape)}")
        onehot = torch.nn.functional.one_hot(y.long(), num_classes).to(torch.float32)
        if torch.rand(()).item() >= self.prob:
            return x, onehot
        use_cutmix = self.cutmix_alpha > 0 and (self.mixup_alpha == 0 or torch.rand(()).item() < self.switch_prob)
        if self.partner == "reversed":
            index = torch.arange(x.shape[0] - 1, -1, -1, device=x.device)
        else:
            index = torch.randperm(x.shape[0]).to(x.device)
        partner = x[index]
        if use_cutmix:
            box = cutmix_box(x.shape[-2:], _beta(self.cutmix_alpha))
            mixed = paste_box(x, partner, box, self.cutmix_on)
            (y0, y1), (x0, x1) = box
            lam = 1.0 - (y1 - y0) * (x1 - x0) / (x.shape[-2] * x.shape[-1])
        else:
            lam = _beta(self.mixup_alpha)
            mixed = x * lam + partner * (1.0 - lam)
        return mixed, onehot * lam + onehot[index] * (1.0 - lam)

    def __repr__(self) -> str:
        return (
            f"MixupCutmix(mixup_alpha={self.mixup_alpha}, cutmix_alpha={self.cutmix_alpha}, "
            f"prob={self.prob}, switch_prob={self.switch_prob}, partner={self.partner!r}, cutmix_on={self.cutmix_on!r})"
        )


def cutmix_box(size, lam: float, generator: torch.Generator | None = None) -> tuple[tuple[int, int], tuple[int, int]]:
    """A box ``((y0, y1), (x0, x1))`` of about ``1 - lam`` of an ``H x W`` frame, centred at random.

    Sides ``int(H sqrt(1 - lam))`` and ``int(W sqrt(1 - lam))``, clipped at the frame's edges (so
    the area can come out smaller; the caller recomputes ``lam`` from the box).

    Example:
        >>> import torch
        >>> cutmix_box((8, 8), lam=0.75, generator=torch.Generator().manual_seed(0))  # 4 x 4, clipped to 4 x 3
        ((2, 6), (5, 8))
    """
    height, width = int(size[0]), int(size[1])
    ratio = math.sqrt(1.0 - lam)
    cut_h, cut_w = int(height * ratio), int(width * ratio)
    cy = int(torch.randint(0, height, (), generator=generator))
    cx = int(torch.randint(0, width, (), generator=generator))
    y0, y1 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, height)
    x0, x1 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, width)
    return (y0, y1), (x0, x1)


def paste_box(x: Tensor, partner: Tensor, box, on: str = "hw") -> Tensor:
    """``x`` with ``partner``'s values inside ``box = ((y0, y1), (x0, x1))``, a new tensor.

    ``on="hw"``: the box covers rows ``y0:y1`` of H and columns ``x0:x1`` of W (``x[..., y0:y1, x0:x1]``).
    ``on="polarity_h"``: ``x[:, :, y0:y1, x0:x1]`` of a ``[N, T, C, H, W]`` batch, as mmpretrain's ``CutMix``
    indexes it: ``y0:y1`` selects polarities (only those below C exist), ``x0:x1`` rows of H, every column.

    Example:
        >>> import torch
        >>> paste_box(torch.zeros(1, 4, 4), torch.ones(1, 4, 4), ((0, 2), (1, 3)))[0]
        tensor([[0., 1., 1., 0.],
                [0., 1., 1., 0.],
                [0., 0., 0., 0.],
                [0., 0., 0., 0.]])
    """
    check_choice("on", on, CUTMIX_ON)
    if partner.shape != x.shape:
        raise ValueError(f"expected partner of x's shape {list(x.shape)}, got {list(partner.shape)}")
    (y0, y1), (x0, x1) = box
    mixed = x.clone()
    if on == "hw":
        mixed[..., y0:y1, x0:x1] = partner[..., y0:y1, x0:x1]
    else:
        if x.dim() != 5:
            raise ValueError(f"on='polarity_h' expected x [N, T, C, H, W], got {list(x.shape)}")
        mixed[:, :, y0:y1, x0:x1] = partner[:, :, y0:y1, x0:x1]
    return mixed


def _beta(alpha: float) -> float:
    return float(torch.distributions.Beta(alpha, alpha).sample())
