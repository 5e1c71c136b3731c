"""Per-sample augmentation of event frames: small transforms and the pipeline that chains them.

Each transform changes one sample ``frames[T, 2, H, W]`` (any ``[..., H, W]``) with one random draw
for every time step and polarity, so a sample stays one coherent scene, as TET's CIFAR10-DVS loader
does:

* :class:`RandomFlip` -- mirror the width axis with probability ``p``;
* :class:`RandomRoll` -- move the picture by ``(dy, dx)``, each uniform in ``[-max_shift,
  max_shift]``, wrapping what leaves one edge round to the other (``torch.roll``, TET's choice);
* :class:`RandomTranslate` -- the same move, dropping what leaves the frame and filling the other
  edge with zeros (no events);
* :class:`Compose` -- several of them, in order;
* :class:`RandomChoice` -- one of several, picked uniformly for each sample; :class:`Identity` leaves a
  sample as it is (one of the choices of a TrivialAugment-style policy).

Warps, rotations and erasing of whole pixels are in :mod:`~bsnn_lightning.data.spatial_augment`.

A DVS DataModule takes a list of transforms as ``augment=`` (in YAML, a list of
``class_path``/``init_args`` entries) and applies them, in that order, to training samples in the
DataLoader workers. Randomness comes from torch's generator, which DataLoader seeds differently in
every worker (numpy's would repeat). Your own transform: subclass :class:`FrameTransform` and define
``__call__(frames) -> frames``.

Batch-level mixing (mixup, cutmix) is :class:`~bsnn_lightning.data.mixing.MixupCutmix`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .loading import check_int, check_probability

__all__ = [
    "SHIFT_MODES",
    "Compose",
    "FrameTransform",
    "Identity",
    "RandomChoice",
    "RandomFlip",
    "RandomRoll",
    "RandomTranslate",
    "check_transforms",
    "random_flip",
    "random_shift",
    "translate",
]

SHIFT_MODES = ("roll", "translate")


# --- the transforms -----------------------------------------------------------------------------


class FrameTransform:
    """A random change of one sample ``frames[..., H, W]``; subclasses define ``__call__``."""

    def __call__(self, frames: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} must define __call__(frames) -> frames")


class RandomFlip(FrameTransform):
    """Mirror the width axis with probability ``p`` (in ``(0, 1]``; leave the transform out for none)."""

    def __init__(self, p: float = 0.5) -> None:
        check_probability("p", p)
        if p == 0:
            raise ValueError("expected p in (0, 1], got 0 (a RandomFlip that never flips: leave it out)")
        self.p = float(p)

    def __call__(self, frames: Tensor) -> Tensor:
        return random_flip(frames, self.p)

    def __repr__(self) -> str:
        return f"RandomFlip(p={self.p})"


class _RandomShift(FrameTransform):
    mode: str  # one of SHIFT_MODES, set by the subclass

    def __init__(self, max_shift: int) -> None:
        check_int("max_shift", max_shift, 1)
        self.max_shift = max_shift

    def __call__(self, frames: Tensor) -> Tensor:
        return random_shift(frames, self.max_shift, self.mode)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_shift={self.max_shift})"


class RandomRoll(_RandomShift):
    """Roll the picture by up to ``max_shift`` (>= 1) pixels along each axis, wrapping round (TET: 5 at 48 x 48)."""

    mode = "roll"


class RandomTranslate(_RandomShift):
    """Move the picture by up to ``max_shift`` (>= 1) pixels along each axis, filling the uncovered edge with 0."""

    mode = "translate"


class Compose(FrameTransform):
    """Apply ``transforms`` in order (each with its own random draw)."""

    def __init__(self, transforms: Sequence[FrameTransform]) -> None:
        self.transforms = check_transforms("transforms", transforms)

    def __call__(self, frames: Tensor) -> Tensor:
        for transform in self.transforms:
            frames = transform(frames)
        return frames

    def __repr__(self) -> str:
        return f"Compose([{', '.join(repr(t) for t in self.transforms)}])"


class Identity(FrameTransform):
    """Return the sample unchanged."""

    def __call__(self, frames: Tensor) -> Tensor:
        return frames

    def __repr__(self) -> str:
        return "Identity()"


class RandomChoice(FrameTransform):
    """Apply one of ``transforms``, picked uniformly at random for each sample (with its own random draw)."""

    def __init__(self, transforms: Sequence[FrameTransform]) -> None:
        self.transforms = check_transforms("transforms", transforms)
        if not self.transforms:
            raise ValueError("expected at least one transform to choose from, got none")

    def __call__(self, frames: Tensor) -> Tensor:
        index = int(torch.randint(len(self.transforms), ()))
        return self.transforms[index](frames)

    def __repr__(self) -> str:
        return f"{type(self).__name__}([{', '.join(repr(t) for t in self.transforms)}])"


def check_transforms(name: str, transforms) -> tuple[FrameTransform, ...]:
    """``transforms`` as a tuple, after checking it is a sequence of :class:`FrameTransform` objects."""
    if (
        isinstance(transforms, (str, bytes, FrameTransform))
        or not isinstance(transforms, Sequence)
        or not all(isinstance(t, FrameTransform) for t in transforms)
    ):
        raise TypeError(
            f"expected {name} to be a list of FrameTransform objects (e.g. [RandomFlip(0.5), RandomRoll(5)]), "
            f"got {transforms!r}"
        )
    return tuple(transforms)


# --- the functions they call --------------------------------------------------------------------


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
