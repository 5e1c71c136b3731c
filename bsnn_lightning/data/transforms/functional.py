"""The operations the transforms apply, as functions of event frames ``[..., H, W]``: flips, shifts,
nearest-neighbour affine warps and box erasing (the random draws of flips and shifts included).

* :func:`random_flip` -- mirror the width axis with probability ``p``;
* :func:`random_shift` -- move by ``(dy, dx)``, each uniform in ``[-max_shift, max_shift]``, wrapping round
  (``"roll"``, ``torch.roll``, TET's choice) or dropping what leaves the frame (``"translate"``);
* :func:`translate` -- move by a given ``(dy, dx)``, zero where nothing lands.

Every operation moves or blanks whole pixels of every time step and polarity alike, so a sample stays one
coherent scene and counts stay counts (no interpolation between pixels). Coordinates follow torchvision's
tensor convention: pixel ``(i, j)`` sits at ``x = j + 0.5 - W/2``, ``y = i + 0.5 - H/2`` (``y`` down), the
image's centre is the origin, and an output pixel takes the input pixel nearest to where the inverse map
sends it (ties to even, as ``grid_sample(mode="nearest")``), or 0 (no events) where that falls outside.

* :func:`warp_nearest` -- any 2 x 2 linear map plus a shift;
* :func:`shear` -- ``x' = x - tan(angle) y`` (``axis="x"``) or ``y' = y - tan(angle) x`` (``axis="y"``);
* :func:`rotate` -- by ``degrees`` counter-clockwise as seen on screen;
* :func:`erase_box` / :func:`random_erase_box` -- blank a box; draw one the way torchvision's
  ``RandomErasing`` does (area fraction and aspect ratio, up to 10 tries).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "SHIFT_MODES",
    "erase_box",
    "random_erase_box",
    "random_flip",
    "random_shift",
    "rotate",
    "shear",
    "translate",
    "warp_nearest",
]

SHIFT_MODES = ("roll", "translate")
"""How :func:`random_shift` treats what leaves the frame: wrapped round, or dropped."""


def random_flip(frames: Tensor, p: float = 0.5, generator: torch.Generator | None = None) -> Tensor:
    """``frames[..., H, W]`` mirrored along W with probability ``p`` (else returned as is).

    Example:
        >>> import torch
        >>> random_flip(torch.tensor([[1.0, 2.0, 3.0]]), p=1.0).tolist()
        [[3.0, 2.0, 1.0]]
    """
    if torch.rand((), generator=generator).item() < p:
        return frames.flip(-1)
    return frames


def random_shift(
    frames: Tensor, max_shift: int, mode: str = "roll", generator: torch.Generator | None = None
) -> Tensor:
    """``frames[..., H, W]`` moved by ``dy, dx`` drawn uniformly from ``[-max_shift, max_shift]``.

    ``"roll"``: content leaving one edge comes back at the other. ``"translate"``: it is dropped,
    and the uncovered border is zero.

    Example:
        >>> import torch
        >>> frames = torch.arange(9.0).reshape(1, 3, 3)
        >>> random_shift(frames, 1, "translate", generator=torch.Generator().manual_seed(0)).tolist()
        [[[0.0, 0.0, 0.0], [1.0, 2.0, 0.0], [4.0, 5.0, 0.0]]]
        >>> random_shift(frames, 1, "wrap")
        Traceback (most recent call last):
            ...
        ValueError: expected mode in ('roll', 'translate'), got 'wrap'
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
    """``out[..., y, x] = frames[..., y - dy, x - dx]`` where that exists, else 0.

    Example:
        >>> import torch
        >>> translate(torch.arange(9.0).reshape(1, 3, 3), dy=1, dx=0).tolist()  # one row down
        [[[0.0, 0.0, 0.0], [0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]]
    """
    height, width = frames.shape[-2:]
    out = torch.zeros_like(frames)
    if abs(dy) >= height or abs(dx) >= width:
        return out
    src_y, dst_y = slice(max(0, -dy), height - max(0, dy)), slice(max(0, dy), height - max(0, -dy))
    src_x, dst_x = slice(max(0, -dx), width - max(0, dx)), slice(max(0, dx), width - max(0, -dx))
    out[..., dst_y, dst_x] = frames[..., src_y, src_x]
    return out


def warp_nearest(frames: Tensor, matrix, shift=(0.0, 0.0)) -> Tensor:
    """``out(p) = frames(A^-1 (p - shift))`` at pixel centres ``p = (x, y)``, nearest pixel, zero outside.

    Args:
        frames: ``[..., H, W]``.
        matrix: the forward linear map ``A`` as ``((a, b), (c, d))``: ``x' = a x + b y``, ``y' = c x + d y``.
        shift: ``(dx, dy)`` in pixels added after ``A`` (positive: right, down).

    Example:
        >>> import torch
        >>> frames = torch.arange(9.0).reshape(3, 3)
        >>> warp_nearest(frames, ((1, 0), (0, 1)), shift=(1, 0)).tolist()  # one pixel right, 0 where nothing lands
        [[0.0, 0.0, 1.0], [0.0, 3.0, 4.0], [0.0, 6.0, 7.0]]
        >>> warp_nearest(frames, ((-1, 0), (0, 1))).tolist()  # x -> -x: a mirror about the centre
        [[2.0, 1.0, 0.0], [5.0, 4.0, 3.0], [8.0, 7.0, 6.0]]
        >>> warp_nearest(frames, ((1, 0), (1, 0)))
        Traceback (most recent call last):
            ...
        ValueError: expected an invertible 2 x 2 matrix, got ((1, 0), (1, 0)) (determinant 0.0)
    """
    if frames.dim() < 2:
        raise ValueError(f"expected frames [..., H, W], got shape {list(frames.shape)}")
    (a, b), (c, d) = ((float(v) for v in row) for row in matrix)
    det = a * d - b * c
    if not math.isfinite(det) or abs(det) < 1e-12:
        raise ValueError(f"expected an invertible 2 x 2 matrix, got {matrix!r} (determinant {det})")
    height, width = frames.shape[-2:]
    ys = torch.arange(height, dtype=torch.float64) + 0.5 - height / 2 - float(shift[1])
    xs = torch.arange(width, dtype=torch.float64) + 0.5 - width / 2 - float(shift[0])
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    src_x = (d * x - b * y) / det
    src_y = (-c * x + a * y) / det
    col = torch.round(src_x + width / 2 - 0.5).long()
    row = torch.round(src_y + height / 2 - 0.5).long()
    inside = ((row >= 0) & (row < height) & (col >= 0) & (col < width)).reshape(-1)
    source = (row.clamp(0, height - 1) * width + col.clamp(0, width - 1)).reshape(-1)
    flat = frames.reshape(*frames.shape[:-2], height * width)
    out = flat.index_select(-1, source) * inside.to(frames.dtype)  # one gather, then blank what fell outside
    return out.reshape(frames.shape)


def shear(frames: Tensor, angle: float, axis: str = "x") -> Tensor:
    """Shear by ``angle`` radians along ``axis``: ``x' = x - tan(angle) y`` ("x") or ``y' = y - tan(angle) x`` ("y").

    Example:
        >>> import torch
        >>> shear(torch.arange(9.0).reshape(3, 3), 0.5, axis="y").tolist()
        [[0.0, 1.0, 5.0], [0.0, 4.0, 8.0], [3.0, 7.0, 0.0]]
    """
    if axis not in ("x", "y"):
        raise ValueError(f"expected axis 'x' or 'y', got {axis!r}")
    t = math.tan(angle)
    matrix = ((1.0, -t), (0.0, 1.0)) if axis == "x" else ((1.0, 0.0), (-t, 1.0))
    return warp_nearest(frames, matrix)


def rotate(frames: Tensor, degrees: float) -> Tensor:
    """Rotate about the centre by ``degrees``, counter-clockwise on screen (``y`` pointing down).

    Example:
        >>> import torch
        >>> rotate(torch.arange(9.0).reshape(3, 3), 90).tolist()  # the top row becomes the left column
        [[2.0, 5.0, 8.0], [1.0, 4.0, 7.0], [0.0, 3.0, 6.0]]
    """
    a = math.radians(degrees)
    return warp_nearest(frames, ((math.cos(a), math.sin(a)), (-math.sin(a), math.cos(a))))


def erase_box(frames: Tensor, top: int, left: int, height: int, width: int, value: float = 0.0) -> Tensor:
    """A copy of ``frames`` with ``[..., top:top+height, left:left+width]`` set to ``value``.

    Example:
        >>> import torch
        >>> erase_box(torch.ones(2, 3, 4), top=1, left=1, height=2, width=2)[0]  # the same box in every channel
        tensor([[1., 1., 1., 1.],
                [1., 0., 0., 1.],
                [1., 0., 0., 1.]])
    """
    out = frames.clone()
    out[..., top : top + height, left : left + width] = value
    return out


def random_erase_box(
    size, scale=(0.02, 0.33), ratio=(0.3, 3.3), generator: torch.Generator | None = None, tries: int = 10
) -> tuple[int, int, int, int] | None:
    """``(top, left, height, width)`` of a box covering a fraction ``U(scale)`` of an ``H x W`` frame with aspect
    ratio ``exp(U(log ratio))`` (height / width), rounded to whole pixels and placed uniformly inside; None if
    ``tries`` draws all give a box as tall or as wide as the frame (torchvision's ``RandomErasing`` then leaves
    the image as it is).

    Example:
        >>> import torch
        >>> random_erase_box((8, 8), generator=torch.Generator().manual_seed(0))
        (1, 2, 5, 2)
        >>> print(random_erase_box((8, 8), scale=(1.0, 1.0), ratio=(1.0, 1.0)))  # the whole frame: no box fits
        None
        >>> random_erase_box((8, 8), scale=(0.5, 0.2))
        Traceback (most recent call last):
            ...
        ValueError: expected scale = (low, high) with 0 <= low <= high <= 1, got (0.5, 0.2)
    """
    height, width = int(size[0]), int(size[1])
    low, high = float(scale[0]), float(scale[1])
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"expected scale = (low, high) with 0 <= low <= high <= 1, got {tuple(scale)}")
    if not 0.0 < float(ratio[0]) <= float(ratio[1]):
        raise ValueError(f"expected ratio = (low, high) with 0 < low <= high, got {tuple(ratio)}")
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    area = height * width
    for _ in range(tries):
        erase_area = area * (low + (high - low) * float(torch.rand((), generator=generator)))
        aspect = math.exp(log_ratio[0] + (log_ratio[1] - log_ratio[0]) * float(torch.rand((), generator=generator)))
        h = int(round(math.sqrt(erase_area * aspect)))
        w = int(round(math.sqrt(erase_area / aspect)))
        if not (h < height and w < width):
            continue
        top = int(torch.randint(0, height - h + 1, (), generator=generator))
        left = int(torch.randint(0, width - w + 1, (), generator=generator))
        return top, left, h, w
    return None
