"""Augmentations (flip, roll/translate and their pipeline; mixup, cutmix) and the soft targets they feed to the losses."""

import re

import pytest
import torch

from bsnn_lightning import SpikingClassifier, losses
from bsnn_lightning.data.transforms import (
    Compose,
    FrameTransform,
    RandomFlip,
    RandomRoll,
    RandomTranslate,
    random_flip,
    random_shift,
    translate,
)
from bsnn_lightning.data.transforms import mixing
from bsnn_lightning.data.transforms.mixing import MixupCutmix, cutmix_box, paste_box


def frames(seed=0, shape=(3, 2, 6, 8)):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def test_flip_mirrors_width_only_and_is_its_own_inverse():
    x = frames()
    assert torch.equal(random_flip(x, p=1.0), x.flip(-1))
    assert torch.equal(random_flip(random_flip(x, p=1.0), p=1.0), x)
    assert random_flip(x, p=0.0) is x


def test_roll_wraps_and_keeps_every_event_translate_drops_the_edge():
    x = frames()
    gen = torch.Generator().manual_seed(3)
    rolled = random_shift(x, 2, "roll", generator=gen)
    dy, dx = (int(v) for v in torch.randint(-2, 3, (2,), generator=torch.Generator().manual_seed(3)))
    assert torch.equal(rolled, torch.roll(x, (dy, dx), dims=(-2, -1)))
    assert torch.allclose(rolled.sum(), x.sum())
    moved = translate(x, 1, -2)  # down 1, left 2
    assert torch.equal(moved[..., 1:, :-2], x[..., :-1, 2:])
    assert moved[..., 0, :].abs().sum() == 0 and moved[..., :, -2:].abs().sum() == 0
    assert translate(x, 6, 0).abs().sum() == 0  # shifted off the frame
    assert random_shift(x, 0) is x


def test_pipeline_draws_one_choice_for_all_time_steps():
    x = frames(shape=(4, 2, 8, 8))
    x[:] = x[0]  # every step and polarity identical
    aug = Compose([RandomFlip(0.5), RandomTranslate(3)])
    torch.manual_seed(0)
    outcomes = set()
    for _ in range(20):
        out = aug(x)
        assert torch.equal(out[1:], out[:1].expand_as(out[1:]))  # the same move at every step
        outcomes.add(out.numpy().tobytes())
    assert len(outcomes) > 5  # and a different move from one sample to the next


def test_pipeline_applies_its_transforms_in_order_with_the_draws_of_the_flags_it_replaces():
    """Flip then roll, drawing from torch's generator exactly as the former flip/max_shift flags did."""
    x = frames(shape=(2, 2, 6, 8))
    torch.manual_seed(7)
    out = [Compose([RandomFlip(0.5), RandomRoll(2)])(x) for _ in range(10)]
    torch.manual_seed(7)
    expected = [random_shift(random_flip(x, 0.5), 2, "roll") for _ in range(10)]
    assert all(torch.equal(a, b) for a, b in zip(out, expected))
    torch.manual_seed(7)
    flipped = RandomFlip(1.0)(x)
    assert torch.equal(flipped, x.flip(-1)) and torch.equal(RandomRoll(1)(torch.ones(2, 3, 3)), torch.ones(2, 3, 3))
    assert repr(Compose([RandomFlip(0.5), RandomRoll(5)])) == "Compose([RandomFlip(p=0.5), RandomRoll(max_shift=5)])"


def test_own_transform_joins_the_pipeline():
    class Double(FrameTransform):
        def __call__(self, frames):
            return 2 * frames

    x = frames()
    assert torch.equal(Compose([Double(), RandomFlip(1.0)])(x), (2 * x).flip(-1))
    with pytest.raises(NotImplementedError, match="FrameTransform must define __call__"):
        FrameTransform()(x)


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: RandomFlip(1.5), ValueError, "expected p in [0, 1], got 1.5"),
        (lambda: RandomFlip(0), ValueError, "expected p in (0, 1], got 0 (a RandomFlip that never flips: leave it out)"),
        (lambda: RandomFlip("0.5"), TypeError, "expected p to be a number in [0, 1], got '0.5'"),
        (lambda: RandomRoll(0), ValueError, "expected max_shift >= 1, got 0"),
        (lambda: RandomTranslate(2.5), TypeError, "expected max_shift to be an int, got 2.5"),
        (lambda: Compose(RandomFlip()), TypeError, "expected transforms to be a list of FrameTransform objects (e.g. [RandomFlip(0.5), RandomRoll(5)]), got RandomFlip(p=0.5)"),
        (lambda: Compose([random_flip]), TypeError, "expected transforms to be a list of FrameTransform objects"),
    ],
)
def test_bad_transform_settings_are_refused(make, error, message):
    with pytest.raises(error, match=re.escape(message)):
        make()


def test_mixup_blends_samples_and_labels_with_the_same_lam():
    torch.manual_seed(0)
    mix = MixupCutmix(mixup_alpha=0.8, cutmix_alpha=0.0)
    x = torch.stack([torch.full((2, 2, 4, 4), float(i)) for i in range(4)])  # sample i holds the value i
    y = torch.tensor([0, 1, 2, 3])
    mixed, soft = mix(x, y, num_classes=5)
    lam = soft[0, 0].item()
    assert 0 < lam < 1 and torch.allclose(soft.sum(1), torch.ones(4))
    assert torch.allclose(soft[0], torch.tensor([lam, 0, 0, 1 - lam, 0]))  # partner of 0 is 3 (reversed batch)
    assert torch.allclose(mixed[0], torch.full((2, 2, 4, 4), 3 * (1 - lam)))


def test_cutmix_pastes_one_box_and_sets_lam_to_the_kept_area():
    torch.manual_seed(1)
    mix = MixupCutmix(mixup_alpha=0.0, cutmix_alpha=1.0)
    x = torch.stack([torch.zeros(2, 2, 16, 16), torch.ones(2, 2, 16, 16)])
    y = torch.tensor([0, 2])
    for _ in range(10):
        mixed, soft = mix(x, y, 3)
        pasted = mixed[0, 0, 0]  # sample 0 got sample 1's ones inside the box
        area = pasted.mean().item()
        assert torch.equal(mixed[0, 0], mixed[0, 1]) and torch.equal(mixed[0, :, 0], mixed[0, :, 1])  # same box everywhere
        assert torch.allclose(soft[0], torch.tensor([1 - area, 0.0, area]))
        rows, cols = pasted.any(1).nonzero(), pasted.any(0).nonzero()
        if len(rows):  # a rectangle
            assert pasted[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].all()
    (y0, y1), (x0, x1) = cutmix_box((10, 20), lam=0.75, generator=torch.Generator().manual_seed(0))
    assert 0 <= y0 <= y1 <= 10 and 0 <= x0 <= x1 <= 20 and (y1 - y0) <= 5 and (x1 - x0) <= 10


def _pasted_elementwise(x, partner, box, on):
    """The paste written out element by element: which of x's elements a box replaces (the reference)."""
    (y0, y1), (x0, x1) = box
    out = x.clone()
    n, t, c, h, w = x.shape
    for i in range(n):
        for j in range(t):
            for k in range(c):
                for r in range(h):
                    for q in range(w):
                        inside = (y0 <= k < y1 and x0 <= r < x1) if on == "polarity_h" else (y0 <= r < y1 and x0 <= q < x1)
                        if inside:
                            out[i, j, k, r, q] = partner[i, j, k, r, q]
    return out


@pytest.mark.parametrize("on", ["hw", "polarity_h"])
@pytest.mark.parametrize("box", [((1, 4), (2, 5)), ((0, 3), (0, 6)), ((3, 6), (1, 2)), ((2, 2), (0, 6))])
def test_paste_box_is_the_elementwise_rule(on, box):
    x = torch.arange(3 * 2 * 2 * 6 * 6, dtype=torch.float32).reshape(3, 2, 2, 6, 6)
    partner = x[[2, 0, 1]]
    assert torch.equal(paste_box(x, partner, box, on), _pasted_elementwise(x, partner, box, on))


def test_released_cutmix_pastes_polarity_row_bands_and_mixes_labels_by_the_nominal_box(monkeypatch):
    """mmpretrain 1.0.2 CutMix on [B, T, C, H, W]: box drawn on (H, W), pasted at [:, :, y0:y1, x0:x1]."""
    x = torch.arange(4 * 2 * 2 * 6 * 6, dtype=torch.float32).reshape(4, 2, 2, 6, 6)
    y = torch.tensor([0, 1, 2, 3])
    mix = MixupCutmix(mixup_alpha=0.0, cutmix_alpha=1.0, partner="permutation", cutmix_on="polarity_h")
    for box, changed in ((((1, 4), (2, 5)), 1 * 3 * 6), (((3, 6), (0, 3)), 0)):
        monkeypatch.setattr(mixing, "cutmix_box", lambda size, lam, box=box: box)
        torch.manual_seed(3)
        mixed, soft = mix(x, y, 4)
        lam = 1 - (box[0][1] - box[0][0]) * (box[1][1] - box[1][0]) / 36  # the nominal box's area, clipped to H x W
        partner = [int(row.argmax()) if row.max() == 1 else int((row - lam * torch.eye(4)[i]).argmax()) for i, row in enumerate(soft)]
        assert sorted(partner) == [0, 1, 2, 3]  # a permutation of the batch
        expected = soft.new_tensor([[lam * (k == i) + (1 - lam) * (k == partner[i]) for k in range(4)] for i in range(4)])
        assert torch.allclose(soft, expected, atol=1e-7, rtol=0)
        assert torch.equal(mixed, _pasted_elementwise(x, x[partner], box, "polarity_h"))
        moved = [int((mixed[i] != x[i]).sum()) for i in range(4)]
        assert all(m == (0 if partner[i] == i else 2 * changed) for i, m in enumerate(moved))  # T = 2 steps
    with pytest.raises(ValueError, match=re.escape("cutmix_on='polarity_h' expected x [N, T, C, H, W], got [4, 2, 6, 6]")):
        mix(x[:, 0], y, 4)


@pytest.mark.slow
def test_released_cutmix_leaves_most_128_frames_unchanged_but_always_mixes_labels():
    """At 128 x 128 with alpha 1 about 35% of the released code's cutmix batches change the input at all."""
    torch.manual_seed(0)
    mix = MixupCutmix(mixup_alpha=0.0, cutmix_alpha=1.0, cutmix_on="polarity_h")
    x = torch.stack([torch.zeros(1, 2, 128, 128), torch.ones(1, 2, 128, 128)])
    y = torch.tensor([0, 1])
    changed = mixed_labels = 0
    for _ in range(150):
        mixed, soft = mix(x, y, 2)
        band = mixed[0, 0]  # [C, H, W]: sample 0 got ones where the box fell
        if band.any():
            changed += 1
            assert band.all(dim=-1).eq(band.any(dim=-1)).all()  # full-width rows
        mixed_labels += bool(soft[0, 1] > 0)
    assert 0.2 < changed / 150 < 0.5 and mixed_labels > 0.9 * 150  # 0.345 exactly (docs/recipes.md)


def test_permutation_partner_is_a_random_permutation_with_one_lam():
    torch.manual_seed(2)
    mix = MixupCutmix(mixup_alpha=0.8, cutmix_alpha=0.0, partner="permutation")
    x = torch.stack([torch.full((2, 2, 4, 4), float(i)) for i in range(6)])  # sample i holds the value i
    mixed, soft = mix(x, torch.arange(6), num_classes=6)
    lam = next(soft[i, i].item() for i in range(6) if soft[i, i] < 1)
    partner = [i if soft[i, i] == 1 else int(soft[i].masked_fill(torch.eye(6, dtype=torch.bool)[i], -1).argmax()) for i in range(6)]
    assert sorted(partner) == list(range(6)) and partner != list(range(5, -1, -1))
    for i in range(6):
        assert torch.allclose(mixed[i], torch.full_like(x[i], lam * i + (1 - lam) * partner[i]))
        assert soft[i, i] == 1 or torch.allclose(soft[i, [i, partner[i]]], torch.tensor([lam, 1 - lam]))


def test_mix_probability_zero_gives_one_hot_and_bad_settings_raise():
    x, y = torch.rand(3, 2, 2, 4, 4), torch.tensor([2, 0, 1])
    same, soft = MixupCutmix(prob=0.0)(x, y, 3)
    assert same is x and torch.equal(soft, torch.eye(3)[[2, 0, 1]])
    with pytest.raises(ValueError, match="both are 0"):
        MixupCutmix(mixup_alpha=0.0, cutmix_alpha=0.0)
    with pytest.raises(ValueError, match=re.escape("expected x [N, ..., H, W] and integer labels y [N], got [3, 2, 2, 4, 4] and [3, 3]")):
        MixupCutmix()(x, torch.eye(3), 3)
    with pytest.raises(ValueError, match=re.escape("expected num_classes >= 2, got 1")):
        MixupCutmix()(x, y, 1)
    with pytest.raises(ValueError, match=re.escape("expected switch_prob in [0, 1], got -0.1")):
        MixupCutmix(switch_prob=-0.1)
    with pytest.raises(ValueError, match=re.escape("expected cutmix_alpha to be a number >= 0, got -1.0")):
        MixupCutmix(cutmix_alpha=-1.0)
    with pytest.raises(ValueError, match=re.escape("expected cutmix_on in ('hw', 'polarity_h'), got 'ch'")):
        MixupCutmix(cutmix_on="ch")
    with pytest.raises(ValueError, match=re.escape("expected partner in ('reversed', 'permutation'), got 'random'")):
        MixupCutmix(partner="random")


@pytest.mark.parametrize("name", ["ce", "lts", "tet", "label_smoothed_tet", "rate_mse"])
def test_losses_accept_soft_targets_and_agree_with_one_hot(name):
    out = torch.randn(4, 3, 5, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([4, 0, 2])
    loss = losses.get_loss(name)
    hard = loss(out, y)
    soft = loss(out, torch.nn.functional.one_hot(y, 5).double())
    assert torch.allclose(hard, soft)
    mixed = 0.7 * torch.nn.functional.one_hot(y, 5).double() + 0.3 * torch.nn.functional.one_hot(y.flip(0), 5).double()
    value = loss(out, mixed)
    value.backward()
    assert torch.isfinite(value) and out.grad is not None


def test_soft_target_validation():
    out = torch.zeros(2, 3, 4)
    with pytest.raises(ValueError, match=re.escape("expected soft targets of shape [N, C] = [3, 4] to match out_seq [T, N, C] = [2, 3, 4], got [3, 5]")):
        losses.tet(out, torch.full((3, 5), 0.2))
    with pytest.raises(ValueError, match="rows of finite, non-negative probabilities summing to 1, got row sums in \\[0.8"):
        losses.tet(out, torch.full((3, 4), 0.2))


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\(\)`")
def test_classifier_trains_on_soft_targets_and_counts_their_top_class():
    net = torch.nn.Sequential(torch.nn.Flatten(2), torch.nn.Linear(8, 3))
    model = SpikingClassifier(net, num_classes=3, loss="label_smoothed_tet")
    x = torch.rand(4, 2, 2, 2, 2)  # [N, T, ...]
    soft = torch.tensor([[0.9, 0.1, 0.0], [0.0, 0.2, 0.8], [0.4, 0.6, 0.0], [1.0, 0.0, 0.0]])
    loss = model.training_step((x, soft), 0)
    loss.backward()
    assert torch.isfinite(loss)
    out = model(x).mean(0).argmax(-1)
    assert model.train_acc.compute().item() == pytest.approx((out == soft.argmax(-1)).float().mean().item())
