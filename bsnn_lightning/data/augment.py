"""Augmentations of event frames: per sample (flip, shift) and per batch (mixup, cutmix).

Per sample, on ``frames[T, 2, H, W]`` (the same random choice for every time step and polarity,
so a sample stays one coherent scene), as TET's CIFAR10-DVS loader does:

* :func:`random_flip` -- mirror the width axis with probability ``p``;
* :func:`random_shift` -- move the picture by ``(dy, dx)``, each uniform in ``[-max_shift,
  max_shift]``; ``"roll"`` wraps what leaves one edge round to the other (``torch.roll``, TET's
  choice), ``"translate"`` drops it and fills the other edge with zeros (no events).

:class:`FrameAugment` bundles them for a DataModule's training set. Randomness comes from torch's
generator, which DataLoader seeds differently in every worker (numpy's would repeat).

Per batch, :class:`MixupCutmix` -- mixup (Zhang et al., ICLR 2018) and cutmix (Yun et al., ICCV
2019) on ``x[N, T, 2, H, W]``: each sample is mixed with the batch reversed (sample ``i`` with
``N-1-i``), and its integer label becomes a soft target ``lam * onehot(y_i) + (1 - lam) *
onehot(y_{N-1-i})``, rows of ``[N, num_classes]`` that sum to one. Mixup blends whole samples with
``lam ~ Beta(a, a)``; cutmix pastes one box (the same box for all time steps) whose area is
``1 - lam`` of the frame, ``lam`` then set to the exact kept area. The losses of
:mod:`bsnn_lightning.losses` accept such soft targets.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["FrameAugment", "MixupCutmix", "SHIFT_MODES", "cutmix_box", "random_flip", "random_shift", "translate"]

SHIFT_MODES = ("roll", "translate")


def random_flip(frames: Tensor, p: float = 0.5, generator: torch.Generator | None = None) -> Tensor:
    """``frames[..., H, W]`` mirrored along W with probability ``p`` (else returned as is)."""
    if torch.rand((), generator=generator).item() < p:
        return frames.flip(-1)
    return frames


def random_shift(
    frames: Tensor, max_shift: int, mode: str = "roll", generator: torch.Generator | None = None
) -> Tensor:
    """``frames[..., H, W]`` moved by ``dy, dx`` drawn uniformly from ``[-max_shift, max_shift]``.

    ``"roll"``: content leaving one edge comes back at the other. ``"translate"``: it is dropped,
    and the uncovered border is zero.
    """
    if mode not in SHIFT_MODES:
        raise ValueError(f"expected mode in {SHIFT_MODES}, got {mode!r}")
    if max_shift == 0:
        return frames
    dy, dx = (int(v) for v in torch.randint(-max_shift, max_shift + 1, (2,), generator=generator))
    if mode == "roll":
        return torch.roll(frames, shifts=(dy, dx), dims=(-2, -1))
    return translate(frames, dy, dx)


def translate(frames: Tensor, dy: int, dx: int) -> Tensor:
    """``out[..., y, x] = frames[..., y - dy, x - dx]`` where that exists, else 0."""
    height, width = frames.shape[-2:]
    out = torch.zeros_like(frames)
    if abs(dy) >= height or abs(dx) >= width:
        return out
    src_y, dst_y = slice(max(0, -dy), height - max(0, dy)), slice(max(0, dy), height - max(0, -dy))
    src_x, dst_x = slice(max(0, -dx), width - max(0, dx)), slice(max(0, dx), width - max(0, -dx))
    out[..., dst_y, dst_x] = frames[..., src_y, src_x]
    return out


class FrameAugment:
    """Training-time augmentation of one sample ``[T, 2, H, W]``: flip, then shift.

    Args:
        flip: probability of a horizontal flip (0 = never).
        max_shift: largest shift in pixels along each axis (0 = none); TET uses 5 at 48 x 48.
        shift_mode: ``"roll"`` or ``"translate"`` (see :func:`random_shift`).
    """

    def __init__(self, flip: float = 0.0, max_shift: int = 0, shift_mode: str = "roll") -> None:
        if not 0.0 <= flip <= 1.0:
            raise ValueError(f"expected flip probability in [0, 1], got {flip}")
        if isinstance(max_shift, bool) or not isinstance(max_shift, int) or max_shift < 0:
            raise ValueError(f"expected max_shift to be an int >= 0, got {max_shift!r}")
        if shift_mode not in SHIFT_MODES:
            raise ValueError(f"expected shift_mode in {SHIFT_MODES}, got {shift_mode!r}")
        self.flip, self.max_shift, self.shift_mode = float(flip), max_shift, shift_mode

    @property
    def active(self) -> bool:
        return self.flip > 0 or self.max_shift > 0

    def __call__(self, frames: Tensor) -> Tensor:
        if self.flip > 0:
            frames = random_flip(frames, self.flip)
        if self.max_shift > 0:
            frames = random_shift(frames, self.max_shift, self.shift_mode)
        return frames

    def __repr__(self) -> str:
        return f"FrameAugment(flip={self.flip}, max_shift={self.max_shift}, shift_mode={self.shift_mode!r})"


class MixupCutmix:
    """Mix a batch ``(x[N, ...,  H, W], y[N])`` into ``(x', soft targets [N, num_classes])``.

    With probability ``prob`` the batch is mixed, by cutmix with probability ``switch_prob`` when
    both are enabled (else by whichever is), otherwise it is returned with one-hot targets. An
    ``alpha`` of 0 disables that method.

    Args:
        num_classes: width of the soft targets.
        mixup_alpha: Beta(a, a) parameter of mixup's ``lam``.
        cutmix_alpha: Beta(a, a) parameter of cutmix's target area.
        prob: probability of mixing a batch at all.
        switch_prob: probability of cutmix rather than mixup when both are enabled.
    """

    def __init__(
        self,
        num_classes: int,
        mixup_alpha: float = 0.8,
        cutmix_alpha: float = 1.0,
        prob: float = 1.0,
        switch_prob: float = 0.5,
    ) -> None:
        if num_classes < 2:
            raise ValueError(f"expected num_classes >= 2, got {num_classes}")
        for name, value in (("mixup_alpha", mixup_alpha), ("cutmix_alpha", cutmix_alpha)):
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"expected {name} >= 0, got {value}")
        for name, value in (("prob", prob), ("switch_prob", switch_prob)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"expected {name} in [0, 1], got {value}")
        if mixup_alpha == 0 and cutmix_alpha == 0:
            raise ValueError("expected mixup_alpha > 0 or cutmix_alpha > 0 (both are 0: nothing to mix)")
        self.num_classes = num_classes
        self.mixup_alpha, self.cutmix_alpha = float(mixup_alpha), float(cutmix_alpha)
        self.prob, self.switch_prob = float(prob), float(switch_prob)

    def __call__(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        if x.dim() < 3 or y.dim() != 1 or x.shape[0] != y.shape[0]:
            raise ValueError(
                f"expected x [N, ..., H, W] and integer labels y [N], got {list(x.shape)} and {list(y.shape)}"
            )
        onehot = torch.nn.functional.one_hot(y.long(), self.num_classes).to(torch.float32)
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
            f"MixupCutmix(num_classes={self.num_classes}, mixup_alpha={self.mixup_alpha}, "
            f"cutmix_alpha={self.cutmix_alpha}, prob={self.prob}, switch_prob={self.switch_prob})"
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
