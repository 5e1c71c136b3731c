"""Whole-pixel warps and erasing (data/transforms/functional.py), the transforms built on them
(data/transforms/spatial.py) and the RandomChoice / Identity combinators (data/transforms/base.py)."""

import math
import re

import pytest
import torch

from bsnn_lightning.data.transforms.base import Identity, RandomChoice
from bsnn_lightning.data.transforms.functional import erase_box, random_erase_box, rotate, shear, translate, warp_nearest
from bsnn_lightning.data.transforms.spatial import (
    RandomAxisShift,
    RandomErase,
    RandomFlip,
    RandomRotate,
    RandomShear,
    SpikFormerDVSAugment,
    draw_magnitude,
)


@pytest.mark.parametrize("size", [(4, 4), (5, 5)])
def test_quarter_turns_are_exact_permutations(size):
    x = torch.rand(3, 2, *size)
    torch.testing.assert_close(rotate(x, 90), torch.rot90(x, 1, (-2, -1)))
    torch.testing.assert_close(rotate(x, -90), torch.rot90(x, -1, (-2, -1)))
    torch.testing.assert_close(rotate(x, 180), x.flip(-1).flip(-2))
    torch.testing.assert_close(warp_nearest(x, ((1, 0), (0, 1))), x)


def test_shear_moves_rows_by_their_distance_from_the_centre():
    x = torch.zeros(5, 5)
    x[0, 2] = 1.0  # y = -2 (two rows above the centre), x = 0
    out = shear(x, 0.3, "x")  # x' = x - tan(0.3) y = +0.62 -> column 3
    assert out[0].tolist() == [0, 0, 0, 1, 0] and out.sum() == 1
    assert torch.equal(shear(x, 0.3, "x")[2], x[2])  # the centre row does not move
    assert torch.equal(shear(x.T, 0.3, "y"), out.T)


def test_warp_fills_with_zeros_and_shift_is_translate():
    x = torch.rand(2, 2, 6, 7) + 1
    torch.testing.assert_close(warp_nearest(x, ((1, 0), (0, 1)), shift=(2, -1)), translate(x, -1, 2))
    assert torch.all(rotate(x, 45)[..., 0, 0] == 0)  # a corner rotates out of the frame
    with pytest.raises(ValueError, match="expected an invertible 2 x 2 matrix"):
        warp_nearest(x, ((1, 2), (2, 4)))


def test_magnitudes_are_drawn_from_float32_bins_and_shifts_truncate_as_the_sources():
    torch.manual_seed(0)
    drawn = [draw_magnitude(5.0, 31) for _ in range(3000)]
    assert set(drawn) == set(torch.linspace(-5.0, 5.0, 31).tolist())  # every bin, as float32 values
    shifts = [int(v) for v in sorted(set(drawn))]
    counts = {s: shifts.count(s) for s in range(-5, 6)}
    assert counts == {-5: 1, -4: 3, -3: 3, -2: 2, -1: 3, 0: 7, 1: 3, 2: 2, 3: 3, 4: 3, 5: 1}  # 0.99999988 -> 0
    assert draw_magnitude(3.0, 1) == 0.0


def test_axis_shift_moves_whole_pixels_along_its_axis_only():
    torch.manual_seed(1)
    x = torch.rand(3, 2, 9, 9) + 1
    for _ in range(20):
        out = RandomAxisShift(5.0, "y")(x)
        candidates = [translate(x, dy, 0) for dy in range(-5, 6)]
        assert any(torch.equal(out, c) for c in candidates)


def test_random_erase_draws_square_boxes_of_the_given_area_inside_the_frame():
    torch.manual_seed(0)
    for _ in range(200):
        top, left, h, w = random_erase_box((128, 96), scale=(0.001, 0.11), ratio=(1.0, 1.0))
        assert h == w and 0 <= top <= 128 - h and 0 <= left <= 96 - w
        assert 0.001 * 128 * 96 - 2 * h <= h * w <= 0.11 * 128 * 96 + 2 * h  # rounding to whole pixels
    assert random_erase_box((4, 4), scale=(0.9, 1.0), ratio=(1.0, 1.0)) is None  # never fits: left alone
    x = torch.ones(3, 2, 8, 8)
    out = erase_box(x, 1, 2, 3, 4)
    assert out[..., 1:4, 2:6].sum() == 0 and out.sum() == x.sum() - 3 * 2 * 12 and x.sum() == 3 * 2 * 64
    with pytest.raises(ValueError, match="expected scale"):
        RandomErase(scale=(0.5, 0.1))


def test_one_draw_per_sample_keeps_every_step_and_polarity_together():
    torch.manual_seed(2)
    frame = torch.rand(1, 1, 16, 16)
    x = frame.expand(4, 2, 16, 16).clone()
    for transform in (RandomShear(0.3), RandomRotate(30.0), RandomErase((0.01, 0.1)), SpikFormerDVSAugment()):
        for _ in range(10):
            out = transform(x)
            assert torch.equal(out, out[:1, :1].expand_as(out))


def test_random_choice_picks_each_transform_uniformly():
    transforms = [_Add(v) for v in range(3)]
    torch.manual_seed(0)
    picks = [int(RandomChoice(transforms)(torch.zeros(1))) for _ in range(3000)]
    assert all(900 < picks.count(v) < 1100 for v in range(3))
    with pytest.raises(ValueError, match="at least one transform"):
        RandomChoice([])
    with pytest.raises(TypeError, match="list of FrameTransform objects"):
        RandomChoice([lambda x: x])


class _Add(Identity):
    def __init__(self, value):
        self.value = value

    def __call__(self, frames):
        return frames + self.value


def test_spikformer_augment_holds_the_released_operations():
    ops = SpikFormerDVSAugment().transforms
    assert [type(t).__name__ for t in ops] == ["Identity", "RandomShear", "RandomAxisShift", "RandomAxisShift", "RandomRotate", "RandomErase"]
    assert (ops[1].max_angle, ops[1].axis, ops[2].axis, ops[3].axis, ops[4].max_degrees) == (0.3, "x", "x", "y", 30.0)
    assert ops[5].scale == (0.001, 0.11) and ops[5].ratio == (1.0, 1.0)
    with_y = SpikFormerDVSAugment(shear_y=True).transforms
    assert [(type(t).__name__, getattr(t, "axis", None)) for t in with_y][1:3] == [("RandomShear", "x"), ("RandomShear", "y")]
    assert "shear_y=True" in repr(SpikFormerDVSAugment(shear_y=True))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: RandomShear(math.pi / 2), "max_angle < pi/2"),
        (lambda: RandomShear(0.3, axis="z"), "axis 'x' or 'y'"),
        (lambda: RandomRotate(30.0, bins=0), "bins to be an int >= 1"),
        (lambda: RandomAxisShift(0.0), "max_shift to be a number > 0"),
    ],
)
def test_spatial_transforms_refuse_bad_settings(make, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make()


def test_transforms_compose_with_the_existing_ones_in_a_datamodule_list():
    from bsnn_lightning.data.transforms import Compose

    torch.manual_seed(0)
    pipeline = Compose([RandomFlip(0.5), SpikFormerDVSAugment()])
    out = pipeline(torch.rand(2, 2, 12, 12))
    assert out.shape == (2, 2, 12, 12)
