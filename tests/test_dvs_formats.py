"""Event-file readers: genuine recordings against MANIFEST.md, hand-built bytes, and bad data.

The genuine files (N-MNIST, N-Caltech101, a DVS128 Gesture labels file) live in
``../shared/dvs-samples`` beside the clone; their statistics are read from its MANIFEST.md, which
was decoded independently of this project. CIFAR10-DVS (AEDAT 2.0) and DVS128 Gesture (AEDAT 3.1)
have no genuine sample: their tests build the bytes here with ``struct``, from the layouts in
FORMATS.md, independently of the package's own writers.
"""

import hashlib
import re
import struct
from pathlib import Path

import numpy as np
import pytest

from bsnn_lightning.data.events import EVENT_DTYPE
from bsnn_lightning.data.formats import (
    EventFileError,
    read_aedat2_dvs128,
    read_aedat31_polarity,
    read_atis_bin,
    read_gesture_labels,
)
from archive_writers import (  # tests/archive_writers.py
    aedat2_dvs128_bytes,
    aedat31_polarity_bytes,
    atis_bytes,
    random_events,
)

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "dvs-samples"
needs_samples = pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"genuine recordings not found at {SAMPLES}")


def manifest_stats() -> dict[str, dict]:
    """The decoded statistics and checksums of MANIFEST.md, by file name."""
    text = (SAMPLES / "MANIFEST.md").read_text()
    stats, sha = {}, {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 7 and cells[0].endswith(".bin") and cells[1].isdigit():
            name, events, x, y, on, off, t = cells
            rng = lambda s: tuple(int(v) for v in s.split(".."))  # noqa: E731
            stats[name] = dict(events=int(events), x=rng(x), y=rng(y), on=int(on), off=int(off), t=rng(t))
        if len(cells) == 6 and re.fullmatch(r"[0-9a-f]{64}", cells[5]):
            sha[cells[0]] = cells[5]
    for name in stats:
        stats[name]["sha256"] = sha[name]
    return stats


SENSORS = {"nmnist_sample_a.bin": (34, 34), "nmnist_sample_b.bin": (34, 34), "ncaltech101_faces_easy_0001.bin": (240, 180)}


# ------------------------------------------------------------------------------------------
# Genuine files
# ------------------------------------------------------------------------------------------


@needs_samples
def test_manifest_lists_the_three_recordings():
    assert set(manifest_stats()) == set(SENSORS)


@needs_samples
@pytest.mark.parametrize("name", sorted(SENSORS))
def test_genuine_atis_recordings_match_the_manifest(name):
    expected = manifest_stats()[name]
    path = SAMPLES / name
    assert hashlib.sha256(path.read_bytes()).hexdigest() == expected["sha256"]  # the very file decoded there
    events = read_atis_bin(path, sensor_size=SENSORS[name])
    assert events.dtype == EVENT_DTYPE
    assert len(events) == expected["events"]
    assert (events["x"].min(), events["x"].max()) == expected["x"]
    assert (events["y"].min(), events["y"].max()) == expected["y"]
    assert int((events["p"] == 1).sum()) == expected["on"]
    assert int((events["p"] == 0).sum()) == expected["off"]
    assert (events["t"].min(), events["t"].max()) == expected["t"]
    assert events["t"][0] == expected["t"][0] and events["t"][-1] == expected["t"][1]
    assert np.all(np.diff(events["t"]) >= 0)  # "timestamps never decrease in any file"


@needs_samples
def test_genuine_gesture_labels_match_the_manifest():
    windows = read_gesture_labels(SAMPLES / "dvsgesture_user01_natural_labels.csv")
    assert len(windows) == 12
    classes = [w.label + 1 for w in windows]  # the file's own 1..11
    assert sorted(set(classes)) == list(range(1, 12))
    assert classes.count(8) == 2 and classes.index(5) < classes.index(4)
    assert windows[0].start_us == 53036986 and windows[-1].end_us == 177991967
    for before, after in zip(windows, windows[1:]):  # sorted, not overlapping
        assert before.start_us < before.end_us <= after.start_us


@needs_samples
def test_genuine_atis_file_truncated_by_one_byte_names_file_and_offset(tmp_path):
    data = (SAMPLES / "nmnist_sample_a.bin").read_bytes()
    cut = tmp_path / "cut.bin"
    cut.write_bytes(data[:-1])
    offset = len(data) - 5
    with pytest.raises(EventFileError, match=rf"{re.escape(str(cut))}: at byte offset {offset}: truncated ATIS .bin"):
        read_atis_bin(cut)


# ------------------------------------------------------------------------------------------
# ATIS .bin details
# ------------------------------------------------------------------------------------------


def _atis_word(x, y, p, t):
    word = (x << 32) | (y << 24) | (p << 23) | t
    return word.to_bytes(5, "big")


def test_atis_bytes_decode_as_documented(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(_atis_word(33, 0, 1, 0x7FFFFF) + _atis_word(0, 33, 0, 5))
    events = read_atis_bin(path)
    assert events.tolist() == [(0x7FFFFF, 33, 0, 1), (5, 0, 33, 0)]


def test_atis_overflow_markers_shift_later_timestamps_and_are_dropped(tmp_path):
    path = tmp_path / "o.bin"
    path.write_bytes(_atis_word(1, 1, 1, 100) + _atis_word(0, 240, 0, 0) + _atis_word(2, 2, 0, 50))
    events = read_atis_bin(path)
    assert events["t"].tolist() == [100, 50 + 2**13] and events["x"].tolist() == [1, 2]


def test_atis_event_outside_the_sensor_names_its_offset(tmp_path):
    path = tmp_path / "bad.bin"
    path.write_bytes(_atis_word(1, 1, 1, 1) + _atis_word(2, 2, 0, 2) + _atis_word(40, 3, 1, 3))
    with pytest.raises(EventFileError, match=r"at byte offset 10: event at \(x=40, y=3\) lies outside the 34 x 34 sensor"):
        read_atis_bin(path, sensor_size=(34, 34))


def test_atis_writer_round_trip(tmp_path):
    events = random_events(np.random.default_rng(0), 500, (240, 180), 300_000)
    path = tmp_path / "r.bin"
    path.write_bytes(atis_bytes(events))
    np.testing.assert_array_equal(read_atis_bin(path, (240, 180)), events)


# ------------------------------------------------------------------------------------------
# AEDAT 2.0 (CIFAR10-DVS)
# ------------------------------------------------------------------------------------------

AEDAT2_HEADER = b"#!AER-DAT2.0\r\n# This is a raw AE data file - do not edit\r\n# Timestamps tick is 1 us\r\n"


def _aedat2_event(raw_x, raw_y, raw_pol, t, special=False):
    address = (raw_y << 8) | (raw_x << 1) | raw_pol | (0x8000 if special else 0)
    return struct.pack(">Ii", address, t)


def test_aedat2_bytes_decode_in_both_conventions(tmp_path):
    path = tmp_path / "c.aedat"
    body = (
        _aedat2_event(3, 5, 0, 10)  # raw polarity 0 = ON
        + _aedat2_event(0, 0, 1, 20, special=True)  # external event: skipped
        + _aedat2_event(127, 0, 1, 30)  # raw polarity 1 = OFF
    )
    path.write_bytes(AEDAT2_HEADER + body)
    sj = read_aedat2_dvs128(path)  # x = 127 - raw_y, y = 127 - raw_x
    assert sj.tolist() == [(10, 122, 124, 1), (30, 127, 0, 0)]
    upright = read_aedat2_dvs128(path, coordinates="upright")  # x = 127 - raw_x, y = 127 - raw_y
    assert upright.tolist() == [(10, 124, 122, 1), (30, 0, 127, 0)]
    # the two pictures are transposes of each other
    assert [(e[1], e[2]) for e in sj.tolist()] == [(e[2], e[1]) for e in upright.tolist()]


def test_aedat2_header_may_have_many_lines(tmp_path):
    path = tmp_path / "long.aedat"
    header = b"#!AER-DAT2.0\r\n" + b"".join(b"# line %d\r\n" % i for i in range(85))
    path.write_bytes(header + _aedat2_event(1, 2, 0, 7))
    assert read_aedat2_dvs128(path).tolist() == [(7, 125, 126, 1)]


@pytest.mark.parametrize("coordinates", ["spikingjelly", "upright"])
def test_aedat2_writer_round_trip(tmp_path, coordinates):
    events = random_events(np.random.default_rng(1), 1000, (128, 128), 1_300_000)
    path = tmp_path / "r.aedat"
    path.write_bytes(aedat2_dvs128_bytes(events, coordinates))
    np.testing.assert_array_equal(read_aedat2_dvs128(path, coordinates), events)


def test_aedat2_truncated_body_names_file_and_offset(tmp_path):
    path = tmp_path / "t.aedat"
    path.write_bytes(AEDAT2_HEADER + _aedat2_event(1, 1, 0, 1) + _aedat2_event(2, 2, 0, 2)[:5])
    offset = len(AEDAT2_HEADER) + 8
    with pytest.raises(EventFileError, match=rf"t.aedat: at byte offset {offset}: truncated AEDAT 2.0 file: .* only 5 of its 8 bytes"):
        read_aedat2_dvs128(path)


def test_aedat2_corrupt_header_and_timestamps(tmp_path):
    path = tmp_path / "x.aedat"
    path.write_bytes(b"#!AER-DAT3.1\r\n")
    with pytest.raises(EventFileError, match=r"at byte offset 0: expected an AEDAT 2.0 file starting with '#!AER-DAT2.0'"):
        read_aedat2_dvs128(path)
    path.write_bytes(b"#!AER-DAT2.0\r\n# cut inside the header")
    with pytest.raises(EventFileError, match=r"at byte offset 14: header line without a newline"):
        read_aedat2_dvs128(path)
    path.write_bytes(AEDAT2_HEADER + _aedat2_event(1, 1, 0, 5) + _aedat2_event(1, 1, 0, -3))
    with pytest.raises(EventFileError, match=rf"at byte offset {len(AEDAT2_HEADER) + 8}: event 1 has a negative timestamp -3"):
        read_aedat2_dvs128(path)
    with pytest.raises(ValueError, match=r"expected coordinates in \('spikingjelly', 'upright'\), got 'jaer'"):
        read_aedat2_dvs128(path, coordinates="jaer")


# ------------------------------------------------------------------------------------------
# AEDAT 3.1 (DVS128 Gesture)
# ------------------------------------------------------------------------------------------

AEDAT31_HEADER = b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n#Start-Time: 2017\r\n#!END-HEADER\r\n"


def _packet(events, event_type=1, size=8, overflow=0, capacity=None, number=None):
    """events: (x, y, p, t, valid) tuples; a 28-byte little-endian header, then the events."""
    n = len(events)
    capacity = n if capacity is None else capacity
    number = n if number is None else number
    head = struct.pack("<HHIiIIII", event_type, 1, size, 4, overflow, capacity, number, n)
    body = b"".join(struct.pack("<Ii", (x << 17) | (y << 2) | (p << 1) | valid, t) for x, y, p, t, valid in events)
    return head + body


def test_aedat31_bytes_decode_as_documented(tmp_path):
    path = tmp_path / "g.aedat"
    path.write_bytes(
        AEDAT31_HEADER
        + _packet([(1, 2, 1, 100, 1), (127, 127, 0, 200, 1), (5, 5, 1, 250, 0)])  # last one invalid
        + _packet([(0, 0, 0, 0, 1)], event_type=0)  # a special-event packet: skipped
        + _packet([(3, 4, 0, 7, 1)], overflow=1)  # timestamp | 1 << 31
    )
    events = read_aedat31_polarity(path)
    assert events.tolist() == [(100, 1, 2, 1), (200, 127, 127, 0), (7 + 2**31, 3, 4, 0)]


def test_aedat31_writer_round_trip(tmp_path):
    events = random_events(np.random.default_rng(2), 3000, (128, 128), 10_000_000, t0=2**31 - 5_000_000)
    path = tmp_path / "r.aedat"
    path.write_bytes(aedat31_polarity_bytes(events, events_per_packet=700))  # packets split at the overflow
    np.testing.assert_array_equal(read_aedat31_polarity(path), events)


def test_aedat31_truncated_and_corrupt_packets_name_file_and_offset(tmp_path):
    path = tmp_path / "bad.aedat"
    first = len(AEDAT31_HEADER)
    good = _packet([(1, 1, 1, 1, 1)])
    path.write_bytes(AEDAT31_HEADER + good + good[:20])
    with pytest.raises(EventFileError, match=rf"bad.aedat: at byte offset {first + len(good)}: truncated packet header"):
        read_aedat31_polarity(path)
    path.write_bytes(AEDAT31_HEADER + good + _packet([(1, 1, 1, 1, 1)] * 3, capacity=3)[:-4])
    with pytest.raises(EventFileError, match=rf"at byte offset {first + len(good)}: truncated packet: .* 3 events of 8 bytes"):
        read_aedat31_polarity(path)
    path.write_bytes(AEDAT31_HEADER + _packet([(1, 1, 1, 1, 1)], size=12) + b"\0" * 4)
    with pytest.raises(EventFileError, match=rf"at byte offset {first}: polarity packet with eventSize 12, expected 8"):
        read_aedat31_polarity(path)
    path.write_bytes(AEDAT31_HEADER + good + _packet([(1, 1, 1, 2, 1), (200, 3, 0, 3, 1)]))
    offset = first + len(good) + 28 + 8
    with pytest.raises(EventFileError, match=rf"at byte offset {offset}: event at \(x=200, y=3\) lies outside the 128 x 128 sensor"):
        read_aedat31_polarity(path)
    path.write_bytes(AEDAT31_HEADER[:-14] + good)
    with pytest.raises(EventFileError, match=r"no '#!END-HEADER' line"):
        read_aedat31_polarity(path)


# ------------------------------------------------------------------------------------------
# Labels CSV
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"label,start,end\n1,0,5\n", r"at byte offset 0: expected the header 'class,startTime_usec,endTime_usec'"),
        (b"class,startTime_usec,endTime_usec\r\n1,0,5\r\n12,6,9\r\n", r"at byte offset 42: line 3: expected a class in 1..11, got 12"),
        (b"class,startTime_usec,endTime_usec\n3,10,10\n", r"line 2: expected endTime > startTime, got 10..10"),
        (b"class,startTime_usec,endTime_usec\n3,10\n", r"line 2: expected 'class,start,end' as three integers, got '3,10'"),
    ],
)
def test_bad_labels_files_name_line_and_offset(tmp_path, text, message):
    path = tmp_path / "user99_led_labels.csv"
    path.write_bytes(text)
    with pytest.raises(EventFileError, match=message):
        read_gesture_labels(path)
