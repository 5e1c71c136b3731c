"""Per-sample spatial augmentation of event frames: flips, shifts, shears, rotations and erasing of whole pixels.

* :class:`RandomFlip` -- mirror the width axis with probability ``p``;
* :class:`RandomRoll` -- move the picture by ``(dy, dx)``, each uniform in ``[-max_shift, max_shift]``, wrapping
  what leaves one edge round to the other (``torch.roll``, TET's choice);
* :class:`RandomTranslate` -- the same move, dropping what leaves the frame and filling the other edge with
  zeros (no events).

The transforms below these draw their magnitude once per sample (the same for every time step and polarity) from
``bins`` evenly spaced values over ``[-max, max]`` (as torchvision's TrivialAugment and the IMP code's
``SpikFormerDVS`` do; the sign flip those add changes nothing, the values being symmetric about 0), and
move whole pixels (:mod:`~bsnn_lightning.data.transforms.functional`: nearest pixel, zero where nothing lands).

* :class:`RandomShear` -- shear along x or y by an angle in ``[-max_angle, max_angle]`` radians;
* :class:`RandomAxisShift` -- shift along x or y by ``int(v)`` pixels, ``v`` in ``[-max_shift, max_shift]``
  (truncated towards zero, as ``int()`` does, on the float32 values ``torch.linspace`` gives, as the source's:
  with 31 bins over +-5, the bins at +-1 and +-2 hold 0.99999988 and 1.9999999, so 0 px is drawn 7 times in 31,
  +-1, +-3 and +-4 px 3 times each, +-2 px twice and +-5 px once);
* :class:`RandomRotate` -- rotate by ``v`` degrees, ``v`` in ``[-max_degrees, max_degrees]``;
* :class:`RandomErase` -- blank a box drawn as torchvision's ``RandomErasing`` draws it;
* :class:`SpikFormerDVSAugment` -- one of identity, shear x, shift x, shift y, rotation and erasing, picked
  uniformly for each sample: what the IMP paper's released data pipelines (amazing-cls ``SpikFormerDVS``)
  apply after the horizontal flip.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..loading import check_int, check_probability
from .base import FrameTransform, Identity, RandomChoice
from .functional import erase_box, random_erase_box, random_flip, random_shift, rotate, shear, translate

__all__ = [
    "RandomAxisShift",
    "RandomErase",
    "RandomFlip",
    "RandomRoll",
    "RandomRotate",
    "RandomShear",
    "RandomTranslate",
    "SpikFormerDVSAugment",
    "draw_magnitude",
]


class RandomFlip(FrameTransform):
    """Mirror the width axis with probability ``p`` (in ``(0, 1]``; leave the transform out for none).

    Example:
        >>> import torch
        >>> RandomFlip(p=1.0)(torch.tensor([[[1.0, 2.0, 3.0]]])).tolist()  # [T=1, H=1, W=3]
        [[[3.0, 2.0, 1.0]]]
        >>> RandomFlip(p=0)
        Traceback (most recent call last):
            ...
        ValueError: expected p in (0, 1], got 0 (a RandomFlip that never flips: leave it out)
    """

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
    """Roll the picture by up to ``max_shift`` (>= 1) pixels along each axis, wrapping round (TET: 5 at 48 x 48).

    Example:
        >>> import torch
        >>> _ = torch.manual_seed(0)
        >>> RandomRoll(max_shift=1)(torch.arange(9.0).reshape(1, 3, 3)).tolist()  # what leaves comes back
        [[[7.0, 8.0, 6.0], [1.0, 2.0, 0.0], [4.0, 5.0, 3.0]]]
    """

    mode = "roll"


class RandomTranslate(_RandomShift):
    """Move the picture by up to ``max_shift`` (>= 1) pixels along each axis, filling the uncovered edge with 0.

    Example:
        >>> import torch
        >>> _ = torch.manual_seed(0)
        >>> RandomTranslate(max_shift=1)(torch.arange(9.0).reshape(1, 3, 3)).tolist()  # what leaves is dropped
        [[[0.0, 0.0, 0.0], [1.0, 2.0, 0.0], [4.0, 5.0, 0.0]]]
        >>> RandomTranslate(max_shift=0)
        Traceback (most recent call last):
            ...
        ValueError: expected max_shift >= 1, got 0
    """

    mode = "translate"



def _check_bins(bins) -> int:
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValueError(f"expected bins to be an int >= 1, got {bins!r}")
    return bins


def _check_max(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
        raise ValueError(f"expected {name} to be a number > 0, got {value!r}")
    return float(value)


def _check_axis(axis) -> str:
    if axis not in ("x", "y"):
        raise ValueError(f"expected axis 'x' or 'y', got {axis!r}")
    return axis


def draw_magnitude(largest: float, bins: int, generator: torch.Generator | None = None) -> float:
    """One of ``bins`` evenly spaced float32 values over ``[-largest, largest]`` (0 for one bin), uniformly.

    float32, as torchvision's and the IMP code's ``torch.linspace`` magnitudes are: what ``int()`` makes of a
    shift depends on it (see the module docstring).

    Example:
        >>> import torch
        >>> generator = torch.Generator().manual_seed(0)
        >>> [draw_magnitude(2.0, bins=5, generator=generator) for _ in range(6)]  # from -2, -1, 0, 1, 2
        [2.0, 2.0, 1.0, -2.0, 1.0, 2.0]
        >>> draw_magnitude(2.0, bins=1)
        0.0
    """
    values = torch.linspace(-largest, largest, bins, dtype=torch.float32) if bins > 1 else torch.zeros(1)
    return float(values[int(torch.randint(bins, (), generator=generator))])


class RandomShear(FrameTransform):
    """Shear along ``axis`` by an angle drawn from ``bins`` values over ``[-max_angle, max_angle]`` radians.

    Example:
        >>> import torch
        >>> _ = torch.manual_seed(0)
        >>> RandomShear(max_angle=0.5, axis="x", bins=3)(torch.arange(9.0).reshape(1, 3, 3)).tolist()
        [[[0.0, 0.0, 1.0], [3.0, 4.0, 5.0], [7.0, 8.0, 0.0]]]
        >>> RandomShear(max_angle=2.0)
        Traceback (most recent call last):
            ...
        ValueError: expected max_angle < pi/2 radians (a shear of 90 degrees is degenerate), got 2.0
    """

    def __init__(self, max_angle: float = 0.3, axis: str = "x", bins: int = 31) -> None:
        self.max_angle = _check_max("max_angle", max_angle)
        if self.max_angle >= math.pi / 2:
            raise ValueError(f"expected max_angle < pi/2 radians (a shear of 90 degrees is degenerate), got {max_angle}")
        self.axis, self.bins = _check_axis(axis), _check_bins(bins)

    def __call__(self, frames: Tensor) -> Tensor:
        return shear(frames, draw_magnitude(self.max_angle, self.bins), self.axis)

    def __repr__(self) -> str:
        return f"RandomShear(max_angle={self.max_angle}, axis={self.axis!r}, bins={self.bins})"


class RandomAxisShift(FrameTransform):
    """Shift along ``axis`` by ``int(v)`` whole pixels, ``v`` drawn from ``bins`` values over ``[-max_shift,
    max_shift]``, filling the uncovered edge with 0.

    Example:
        >>> import torch
        >>> _ = torch.manual_seed(0)
        >>> RandomAxisShift(max_shift=2.0, axis="x", bins=5)(torch.arange(9.0).reshape(1, 3, 3)).tolist()  # 2 px right
        [[[0.0, 0.0, 0.0], [0.0, 0.0, 3.0], [0.0, 0.0, 6.0]]]
    """

    def __init__(self, max_shift: float = 5.0, axis: str = "x", bins: int = 31) -> None:
        self.max_shift = _check_max("max_shift", max_shift)
        self.axis, self.bins = _check_axis(axis), _check_bins(bins)

    def __call__(self, frames: Tensor) -> Tensor:
        pixels = int(draw_magnitude(self.max_shift, self.bins))  # int() truncates towards zero
        return translate(frames, 0, pixels) if self.axis == "x" else translate(frames, pixels, 0)

    def __repr__(self) -> str:
        return f"RandomAxisShift(max_shift={self.max_shift}, axis={self.axis!r}, bins={self.bins})"


class RandomRotate(FrameTransform):
    """Rotate about the centre by ``v`` degrees, ``v`` drawn from ``bins`` values over ``[-max_degrees, max_degrees]``.

    Example:
        >>> import torch
        >>> _ = torch.manual_seed(0)
        >>> RandomRotate(max_degrees=90.0, bins=3)(torch.arange(9.0).reshape(1, 3, 3)).tolist()  # drew +90
        [[[2.0, 5.0, 8.0], [1.0, 4.0, 7.0], [0.0, 3.0, 6.0]]]
        >>> RandomRotate(bins=0)
        Traceback (most recent call last):
            ...
        ValueError: expected bins to be an int >= 1, got 0
    """

    def __init__(self, max_degrees: float = 30.0, bins: int = 31) -> None:
        self.max_degrees = _check_max("max_degrees", max_degrees)
        self.bins = _check_bins(bins)

    def __call__(self, frames: Tensor) -> Tensor:
        return rotate(frames, draw_magnitude(self.max_degrees, self.bins))

    def __repr__(self) -> str:
        return f"RandomRotate(max_degrees={self.max_degrees}, bins={self.bins})"


class RandomErase(FrameTransform):
    """Set one box to ``value`` (0: no events): its area a fraction ``U(scale)`` of the frame, its aspect ratio
    ``exp(U(log ratio))``, drawn as torchvision's ``RandomErasing(p=1)`` draws it (the same box at every step).

    Example:
        >>> import torch
        >>> _ = torch.manual_seed(0)
        >>> out = RandomErase()(torch.ones(2, 8, 8))  # [polarity, H, W]
        >>> out.shape, int((out == 0).sum())  # a 5 x 2 box blanked in both polarities
        (torch.Size([2, 8, 8]), 20)
    """

    def __init__(self, scale: tuple[float, float] = (0.02, 0.33), ratio: tuple[float, float] = (0.3, 3.3), value: float = 0.0) -> None:
        if len(scale) != 2 or len(ratio) != 2:
            raise ValueError(f"expected scale and ratio as (low, high) pairs, got {scale!r} and {ratio!r}")
        self.scale, self.ratio, self.value = (float(scale[0]), float(scale[1])), (float(ratio[0]), float(ratio[1])), float(value)
        random_erase_box((2, 2), self.scale, self.ratio, tries=0)  # checks the ranges

    def __call__(self, frames: Tensor) -> Tensor:
        box = random_erase_box(frames.shape[-2:], self.scale, self.ratio)
        return frames if box is None else erase_box(frames, *box, value=self.value)

    def __repr__(self) -> str:
        return f"RandomErase(scale={self.scale}, ratio={self.ratio}, value={self.value})"


class SpikFormerDVSAugment(RandomChoice):
    """One of six operations, uniformly for each sample: identity, :class:`RandomShear` along x (up to
    ``max_shear`` radians), :class:`RandomAxisShift` along x and along y (up to ``max_shift`` pixels),
    :class:`RandomRotate` (up to ``max_degrees``) and :class:`RandomErase` (area fraction in ``erase_scale``,
    square boxes), magnitudes over ``bins`` values.

    The defaults are the IMP code's ``SpikFormerDVS`` as it runs: its configs pass an ``augmentation_space``
    (with a shear along y too) through a helper that returns None, so the transform falls back to its built-in
    space, these six operations; its erasing is torchvision's ``RandomErasing(p=1, scale=(0.001, 0.11),
    ratio=(1, 1))``, whose box does not depend on the "Cutout" magnitudes. ``shear_y=True`` adds the shear
    along y the configs list.

    Example:
        >>> import torch
        >>> augment = SpikFormerDVSAugment()
        >>> augment
        SpikFormerDVSAugment(max_shear=0.3, max_shift=5.0, max_degrees=30.0, erase_scale=(0.001, 0.11), bins=31, shear_y=False)
        >>> len(augment.transforms), len(SpikFormerDVSAugment(shear_y=True).transforms)
        (6, 7)
        >>> augment(torch.ones(4, 2, 16, 16)).shape  # [T, 2, H, W]
        torch.Size([4, 2, 16, 16])
    """

    def __init__(
        self,
        max_shear: float = 0.3,
        max_shift: float = 5.0,
        max_degrees: float = 30.0,
        erase_scale: tuple[float, float] = (0.001, 0.11),
        bins: int = 31,
        shear_y: bool = False,
    ) -> None:
        ops: list[FrameTransform] = [Identity(), RandomShear(max_shear, "x", bins)]
        if shear_y:
            ops.append(RandomShear(max_shear, "y", bins))
        ops += [
            RandomAxisShift(max_shift, "x", bins),
            RandomAxisShift(max_shift, "y", bins),
            RandomRotate(max_degrees, bins),
            RandomErase(erase_scale, (1.0, 1.0)),
        ]
        super().__init__(ops)
        self.settings = {
            "max_shear": float(max_shear), "max_shift": float(max_shift), "max_degrees": float(max_degrees),
            "erase_scale": (float(erase_scale[0]), float(erase_scale[1])), "bins": bins, "shear_y": bool(shear_y),
        }  # fmt: skip

    def __repr__(self) -> str:
        return "SpikFormerDVSAugment(" + ", ".join(f"{k}={v!r}" for k, v in self.settings.items()) + ")"
