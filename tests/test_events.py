"""events_to_frames: binning by time and by number, polarity channels, resizing, validation."""

import re

import numpy as np
import pytest

from bsnn_lightning.data.events import EVENT_DTYPE, events_from_arrays, events_to_frames


def _events(rows):
    """rows of (t, x, y, p)."""
    t, x, y, p = zip(*rows)
    return events_from_arrays(t, x, y, p)


def test_event_dtype_fields():
    assert EVENT_DTYPE.names == ("t", "x", "y", "p")
    assert [EVENT_DTYPE[n] for n in EVENT_DTYPE.names] == [
        np.dtype(np.int64), np.dtype(np.int16), np.dtype(np.int16), np.dtype(np.int8)
    ]


def test_split_by_time_exact_counts_and_polarity_channels():
    # span [0, 99] -> 4 bins of 25 µs: [0,25) [25,50) [50,75) [75,100)
    events = _events([
        (0, 0, 0, 1), (10, 0, 0, 1), (24, 3, 1, 0),  # bin 0
        (25, 1, 0, 0),  # bin 1
        (74, 2, 1, 1),  # bin 2
        (75, 2, 1, 1), (99, 3, 0, 0),  # bin 3
    ])
    frames = events_to_frames(events, sensor_size=(4, 2), time_steps=4, split_by="time")
    expected = np.zeros((4, 2, 2, 4), dtype=np.float32)
    expected[0, 1, 0, 0] = 2  # two ON events at (x=0, y=0)
    expected[0, 0, 1, 3] = 1  # OFF at (x=3, y=1)
    expected[1, 0, 0, 1] = 1
    expected[2, 1, 1, 2] = 1
    expected[3, 1, 1, 2] = 1
    expected[3, 0, 0, 3] = 1
    assert frames.dtype == np.float32
    np.testing.assert_array_equal(frames, expected)


def test_split_by_time_offset_start_and_unsorted_input():
    # span [1000, 1005] (6 µs) in 3 bins of 2 µs; order of the array does not matter
    events = _events([(1005, 0, 0, 1), (1000, 0, 0, 1), (1003, 0, 0, 1), (1001, 0, 0, 1),
                      (1002, 0, 0, 1)])
    frames = events_to_frames(events, (1, 1), 3)
    np.testing.assert_array_equal(frames[:, 1, 0, 0], [2, 2, 1])
    np.testing.assert_array_equal(frames[:, 0, 0, 0], [0, 0, 0])


def test_split_by_number_exact_counts():
    # 7 events in 3 bins: event i -> floor(3 i / 7) = 0,0,0,1,1,2,2
    events = _events([(t, t % 2, 0, t % 2) for t in (0, 0, 5, 6, 100, 100, 1000)])
    frames = events_to_frames(events, (2, 1), 3, split_by="number")
    np.testing.assert_array_equal(frames.sum(axis=(1, 2, 3)), [3, 2, 2])
    # bin 0 holds t = 0 (x0 OFF), 0 (x0 OFF), 5 (x1 ON)
    np.testing.assert_array_equal(frames[0, :, 0, :], [[2, 0], [0, 1]])


def test_split_by_number_fewer_events_than_bins():
    events = _events([(0, 0, 0, 1), (9, 0, 0, 0)])
    frames = events_to_frames(events, (1, 1), 5, split_by="number")  # bins floor(5 i / 2) = 0, 2
    np.testing.assert_array_equal(frames.sum(axis=(1, 2, 3)), [1, 0, 1, 0, 0])


def test_single_timestamp_goes_to_first_time_bin():
    events = _events([(7, 0, 0, 1), (7, 0, 0, 1)])
    frames = events_to_frames(events, (1, 1), 4)
    np.testing.assert_array_equal(frames.sum(axis=(1, 2, 3)), [2, 0, 0, 0])


@pytest.mark.parametrize("split_by", ["time", "number"])
def test_empty_events_give_zero_frames(split_by):
    empty = np.zeros(0, dtype=EVENT_DTYPE)
    frames = events_to_frames(empty, (34, 34), 8, split_by=split_by)
    assert frames.shape == (8, 2, 34, 34) and frames.dtype == np.float32 and not frames.any()
    resized = events_to_frames(empty, (128, 128), 3, split_by=split_by, resize=(48, 40))
    assert resized.shape == (3, 2, 48, 40) and not resized.any()


def test_accepts_tonic_style_dtype_with_other_field_order_and_bool_polarity():
    tonic = np.zeros(3, dtype=[("x", np.int64), ("y", np.int64), ("p", bool), ("t", np.int64)])
    tonic["x"], tonic["y"], tonic["p"], tonic["t"] = [0, 1, 1], [0, 0, 1], [True, False, True], [0, 1, 2]
    frames = events_to_frames(tonic, (2, 2), 1)
    np.testing.assert_array_equal(frames[0, 1], [[1, 0], [0, 1]])
    np.testing.assert_array_equal(frames[0, 0], [[0, 1], [0, 0]])


def test_resize_block_sums_when_size_divides():
    rng = np.random.default_rng(0)
    n = 500
    events = events_from_arrays(np.sort(rng.integers(0, 10_000, n)), rng.integers(0, 8, n),
                                rng.integers(0, 6, n), rng.integers(0, 2, n))
    full = events_to_frames(events, (8, 6), 4)
    small = events_to_frames(events, (8, 6), 4, resize=(3, 2))  # 2 x 4 blocks
    expected = full.reshape(4, 2, 3, 2, 2, 4).sum(axis=(3, 5))
    np.testing.assert_allclose(small, expected, rtol=0, atol=1e-5)


def test_resize_splits_straddling_pixels_by_overlap():
    # 2 -> 3 columns: input pixel 0 spans output [0, 1.5): 2/3 to column 0, 1/3 to column 1
    events = _events([(0, 0, 0, 1)] * 3)
    frames = events_to_frames(events, (2, 1), 1, resize=(1, 3))
    np.testing.assert_allclose(frames[0, 1, 0], [2.0, 1.0, 0.0], atol=1e-6)


def test_resize_128_to_48_conserves_counts_per_frame_and_polarity():
    rng = np.random.default_rng(1)
    n = 20_000
    events = events_from_arrays(np.sort(rng.integers(0, 10**6, n)), rng.integers(0, 128, n),
                                rng.integers(0, 128, n), rng.integers(0, 2, n))
    full = events_to_frames(events, (128, 128), 5)
    small = events_to_frames(events, (128, 128), 5, resize=(48, 48))
    assert small.shape == (5, 2, 48, 48)
    np.testing.assert_allclose(small.sum(axis=(2, 3)), full.sum(axis=(2, 3)), rtol=1e-5)
    assert small.min() >= 0


BAD_INPUTS = [
    (dict(events=np.zeros(3)), TypeError, "expected a structured numpy array with fields"),
    (dict(events=[(0, 0, 0, 1)]), TypeError, "got list"),
    (dict(events=np.zeros(2, dtype=[("t", np.int64), ("x", np.int16), ("y", np.int16)])),
     TypeError, "(missing ('p',))"),
    (dict(events=np.zeros(2, dtype=[("t", float), ("x", np.int16), ("y", np.int16), ("p", np.int8)])),
     TypeError, "expected an integer field 't', got dtype float64"),
    (dict(events=_events([(0, 40, 0, 1)])), ValueError, "expected events with x in [0, 34), got max x = 40"),
    (dict(events=_events([(0, 3, -1, 1)])), ValueError, "expected events with y in [0, 34), got min y = -1"),
    (dict(events=_events([(0, 3, 34, 1)])), ValueError, "expected events with y in [0, 34), got max y = 34"),
    (dict(events=np.array([(0, 1, 1, 2)], dtype=EVENT_DTYPE)), ValueError,
     "expected p in {0, 1} (0 = OFF, 1 = ON), got values [2]"),
    (dict(time_steps=0), ValueError, "expected time_steps >= 1, got 0"),
    (dict(time_steps=2.0), TypeError, "expected time_steps to be an int >= 1, got 2.0"),
    (dict(split_by="count"), ValueError, "expected split_by in ('time', 'number'), got 'count'"),
    (dict(split_by="number", events=_events([(5, 0, 0, 1), (3, 0, 0, 1)])), ValueError,
     "expected events sorted by t (non-decreasing) for split_by='number', got t[0] = 5 > t[1] = 3"),
    (dict(sensor_size=(34,)), ValueError, "expected sensor_size = (width, height) as two positive ints, got (34,)"),
    (dict(resize=(0, 48)), ValueError, "expected resize = (height, width) as two positive ints, got (0, 48)"),
]


@pytest.mark.parametrize(("kwargs", "error", "message"), BAD_INPUTS)
def test_bad_inputs_raise_with_expected_and_given(kwargs, error, message):
    args = dict(events=_events([(0, 1, 1, 1)]), sensor_size=(34, 34), time_steps=4, split_by="time")
    args.update(kwargs)
    with pytest.raises(error, match=re.escape(message)):
        events_to_frames(**args)


def test_unsorted_timestamps_are_fine_by_time():
    events = _events([(5, 0, 0, 1), (3, 0, 0, 1)])
    np.testing.assert_array_equal(events_to_frames(events, (1, 1), 3)[:, 1, 0, 0], [1, 0, 1])


def test_events_from_arrays_refuses_lossy_values():
    with pytest.raises(ValueError, match=re.escape("expected x values representable as int16, got range [0, 40000]")):
        events_from_arrays([0, 1], [0, 40000], [0, 0], [0, 1])
    with pytest.raises(ValueError, match=re.escape("expected t values representable as int64, got range [0.5, 0.5]")):
        events_from_arrays([0.5], [0], [0], [0])
    with pytest.raises(ValueError, match=re.escape("expected p in {0, 1}, got values [-1]")):
        events_from_arrays([0], [0], [0], [-1])
    with pytest.raises(ValueError, match="expected four 1-D arrays of equal length"):
        events_from_arrays([0, 1], [0], [0], [0])
