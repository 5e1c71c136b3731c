"""What every per-sample transform of event frames is, and how several are combined.

A transform changes one sample ``frames[T, 2, H, W]`` (any ``[..., H, W]``) with one random draw for every time
step and polarity, so a sample stays one coherent scene. Randomness comes from torch's generator, which
DataLoader seeds differently in every worker (numpy's would repeat). Your own transform: subclass
:class:`FrameTransform` and define ``__call__(frames) -> frames``.

* :class:`FrameTransform` -- the base class;
* :class:`Compose` -- several transforms, in order;
* :class:`RandomChoice` -- one of several, picked uniformly for each sample; :class:`Identity` leaves a sample
  as it is (one of the choices of a TrivialAugment-style policy).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["Compose", "FrameTransform", "Identity", "RandomChoice", "check_transforms"]


class FrameTransform:
    """A random change of one sample ``frames[..., H, W]``; subclasses define ``__call__``.

    Example:
        >>> import torch
        >>> class Negate(FrameTransform):
        ...     def __call__(self, frames):
        ...         return -frames
        >>> Negate()(torch.ones(1, 2, 1, 2)).flatten().tolist()
        [-1.0, -1.0, -1.0, -1.0]
        >>> FrameTransform()(torch.ones(1))
        Traceback (most recent call last):
            ...
        NotImplementedError: FrameTransform must define __call__(frames) -> frames
    """

    def __call__(self, frames: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} must define __call__(frames) -> frames")



class Compose(FrameTransform):
    """Apply ``transforms`` in order (each with its own random draw).

    Example:
        >>> import torch
        >>> from bsnn_lightning.data.transforms import RandomErase, RandomFlip
        >>> augment = Compose([RandomFlip(p=1.0), RandomErase(scale=(0.25, 0.25), ratio=(1.0, 1.0))])
        >>> augment
        Compose([RandomFlip(p=1.0), RandomErase(scale=(0.25, 0.25), ratio=(1.0, 1.0), value=0.0)])
        >>> out = augment(torch.ones(3, 2, 4, 4))  # flipped, then a 2 x 2 box blanked at every step
        >>> out.shape, int((out == 0).sum())
        (torch.Size([3, 2, 4, 4]), 24)
    """

    def __init__(self, transforms: Sequence[FrameTransform]) -> None:
        self.transforms = check_transforms("transforms", transforms)

    def __call__(self, frames: Tensor) -> Tensor:
        for transform in self.transforms:
            frames = transform(frames)
        return frames

    def __repr__(self) -> str:
        return f"Compose([{', '.join(repr(t) for t in self.transforms)}])"


class Identity(FrameTransform):
    """Return the sample unchanged.

    Example:
        >>> import torch
        >>> frames = torch.ones(4, 2, 8, 8)
        >>> Identity()(frames) is frames
        True
    """

    def __call__(self, frames: Tensor) -> Tensor:
        return frames

    def __repr__(self) -> str:
        return "Identity()"


class RandomChoice(FrameTransform):
    """Apply one of ``transforms``, picked uniformly at random for each sample (with its own random draw).

    Example:
        >>> import torch
        >>> from bsnn_lightning.data.transforms import RandomFlip
        >>> _ = torch.manual_seed(0)
        >>> choose = RandomChoice([Identity(), RandomFlip(p=1.0)])
        >>> sorted({tuple(choose(torch.tensor([[1.0, 2.0]])).flatten().tolist()) for _ in range(20)})
        [(1.0, 2.0), (2.0, 1.0)]
        >>> RandomChoice([])
        Traceback (most recent call last):
            ...
        ValueError: expected at least one transform to choose from, got none
    """

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
    """``transforms`` as a tuple, after checking it is a sequence of :class:`FrameTransform` objects.

    Example:
        >>> check_transforms("augment", [Identity()])
        (Identity(),)
        >>> check_transforms("augment", Identity())
        Traceback (most recent call last):
            ...
        TypeError: expected augment to be a list of FrameTransform objects (e.g. [RandomFlip(0.5), RandomRoll(5)]), got Identity()
    """
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
