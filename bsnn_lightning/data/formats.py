"""Readers of the event files of the four DVS datasets, written with numpy from the byte layouts.

Every reader returns an :data:`~bsnn_lightning.data.events.EVENT_DTYPE` array in file order
(``t`` in µs, ``x`` = column, ``y`` = row with 0 at the top, ``p`` = 1 for ON, 0 for OFF), ready
for :func:`~bsnn_lightning.data.events.events_to_frames`. A file that is truncated or that holds
impossible values raises :class:`EventFileError`, whose message names the file and the byte
offset where the problem starts; nothing is clipped or skipped silently.

Formats (see ``docs/datasets.md`` for the full byte layouts and where each rule comes from):

* :func:`read_atis_bin` -- N-MNIST and N-Caltech101: no header, 5 bytes per event.
* :func:`read_aedat2_dvs128` -- CIFAR10-DVS: jAER AEDAT 2.0 with DVS128 addresses.
* :func:`read_aedat31_polarity` -- DVS128 Gesture: AEDAT 3.1 packets of polarity events.
* :func:`read_gesture_labels` -- DVS128 Gesture's ``*_labels.csv``: the gesture windows.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .events import EVENT_DTYPE

__all__ = [
    "AEDAT2_COORDINATES",
    "EventFileError",
    "GestureWindow",
    "read_aedat2_dvs128",
    "read_aedat31_polarity",
    "read_atis_bin",
    "read_gesture_labels",
]

AEDAT2_COORDINATES = ("spikingjelly", "upright")
"""Pixel conventions :func:`read_aedat2_dvs128` offers for CIFAR10-DVS (see its docstring)."""

ATIS_OVERFLOW_Y = 240
"""``y`` value that marks a timestamp-overflow record in ATIS ``.bin`` files (not an event)."""
ATIS_OVERFLOW_US = 2**13
"""Time the reference readers (Orchard's, Tonic's, SpikingJelly's) add per overflow record."""

_DVS128_SIZE = 128
_AEDAT31_PACKET_HEADER = np.dtype(
    [
        ("type", "<u2"),
        ("source", "<u2"),
        ("size", "<u4"),
        ("ts_offset", "<u4"),
        ("ts_overflow", "<u4"),
        ("capacity", "<u4"),
        ("number", "<u4"),
        ("valid", "<u4"),
    ]
)
_AEDAT31_POLARITY = 1  # eventType of polarity events
_AEDAT31_END_HEADER = b"#!END-HEADER\r\n"


class EventFileError(ValueError):
    """An event file that cannot be read as its format says; ``path`` and ``offset`` locate it.

    Example:
        >>> err = EventFileError("00001.bin", 20, "truncated ATIS .bin file")
        >>> isinstance(err, ValueError), err.offset, err.problem
        (True, 20, 'truncated ATIS .bin file')
        >>> print(err)
        00001.bin: at byte offset 20: truncated ATIS .bin file
    """

    def __init__(self, path: str | os.PathLike, offset: int, problem: str) -> None:
        self.path = Path(path)
        self.offset = int(offset)
        self.problem = problem
        super().__init__(f"{self.path}: at byte offset {self.offset}: {problem}")

    def __reduce__(self):  # rebuilt from its three parts when a worker process sends it back
        return type(self), (self.path, self.offset, self.problem)


class GestureWindow(NamedTuple):
    """One row of a DVS128 Gesture labels file: a gesture and its time window on the events' clock.

    Example:
        >>> window = GestureWindow(label=0, start_us=1000, end_us=2000)
        >>> window.end_us - window.start_us  # the window's length in µs; t == end_us is outside it
        1000
    """

    label: int
    """Class index 0..10 (the file's class 1..11 minus one)."""
    start_us: int
    """First microsecond of the window (included)."""
    end_us: int
    """End of the window (excluded): events with ``start_us <= t < end_us`` belong to it."""


# --------------------------------------------------------------------------------------------
# N-MNIST and N-Caltech101
# --------------------------------------------------------------------------------------------


def read_atis_bin(path: str | os.PathLike, sensor_size: tuple[int, int] | None = None) -> np.ndarray:
    """Read an ATIS ``.bin`` recording (N-MNIST, N-Caltech101).

    Layout: no header; each event is one big-endian 40-bit word of 5 bytes: byte 0 = ``x``,
    byte 1 = ``y`` (0 = top row), bit 7 of byte 2 = polarity (1 = ON), the low 7 bits of byte 2
    and bytes 3-4 = a 23-bit timestamp in µs. A record with ``y == 240`` is a timestamp-overflow
    marker, not an event: as in the reference readers, every later timestamp (and the marker's
    own) gets ``2**13`` µs added per marker, and the markers are dropped.

    Args:
        path: the ``.bin`` file.
        sensor_size: ``(width, height)``; when given, an event outside it raises.

    Raises:
        EventFileError: the size is not a whole number of 5-byte events (truncated file), or an
            event lies outside ``sensor_size``; the message gives the byte offset of that event.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> tmp = tempfile.TemporaryDirectory()
        >>> path = Path(tmp.name) / "00001.bin"
        >>> # two 5-byte events: ON at (x=3, y=5), t=100, and OFF at (x=4, y=6), t=200
        >>> _ = path.write_bytes(bytes([3, 5, 0x80, 0, 100, 4, 6, 0, 0, 200]))
        >>> read_atis_bin(path, sensor_size=(34, 34)).tolist()  # (t, x, y, p)
        [(100, 3, 5, 1), (200, 4, 6, 0)]
        >>> _ = path.write_bytes(bytes([3, 5, 0x80, 0]))  # cut short
        >>> try:
        ...     read_atis_bin(path)
        ... except EventFileError as err:
        ...     print(err.offset, err.problem)
        0 truncated ATIS .bin file: 4 bytes is not a whole number of 5-byte events; the last event has only 4 of its 5 bytes
        >>> tmp.cleanup()
    """
    path = Path(path)
    raw = np.fromfile(path, dtype=np.uint8)
    whole = raw.size - raw.size % 5
    if whole != raw.size:
        raise EventFileError(
            path,
            whole,
            f"truncated ATIS .bin file: {raw.size} bytes is not a whole number of 5-byte events; "
            f"the last event has only {raw.size - whole} of its 5 bytes",
        )
    words = raw.reshape(-1, 5).astype(np.int64)
    x, y = words[:, 0], words[:, 1]
    t = ((words[:, 2] & 0x7F) << 16) | (words[:, 3] << 8) | words[:, 4]
    p = words[:, 2] >> 7
    overflow = y == ATIS_OVERFLOW_Y
    if overflow.any():
        t = t + ATIS_OVERFLOW_US * np.cumsum(overflow)
    index = np.flatnonzero(~overflow)
    if sensor_size is not None:
        _check_in_sensor(path, x[index], y[index], sensor_size, index * 5)
    return _pack(t[index], x[index], y[index], p[index])


# --------------------------------------------------------------------------------------------
# CIFAR10-DVS
# --------------------------------------------------------------------------------------------


def read_aedat2_dvs128(path: str | os.PathLike, coordinates: str = "spikingjelly") -> np.ndarray:
    """Read a jAER AEDAT 2.0 recording of the DVS128 sensor (CIFAR10-DVS).

    Layout: a header of text lines that start with ``#`` (the first is ``#!AER-DAT2.0``), then
    8 bytes per event, big-endian: ``uint32`` address, ``int32`` timestamp in µs. Address bits:
    0 = polarity with raw 0 = ON (inverted), 1-7 = ``raw_x``, 8-14 = ``raw_y``; bit 15 (and 31)
    mark special (external) events, which are skipped. Negative timestamps raise.

    The two readers in use disagree on the picture (FORMATS in ``docs/datasets.md``):

    * ``"spikingjelly"`` (default): ``x = 127 - raw_y``, ``y = 127 - raw_x``, SpikingJelly's
      CIFAR10-DVS reader. The IMP paper's released code trains on frames made this way, so its
      flips and shifts act on the same axes here. TET made its own frames with MATLAB ``dat2mat``
      (row ``127 - raw_x``, column ``raw_y``): these mirrored in W.
    * ``"upright"``: jAER's own view, ``x = 127 - raw_x`` and ``y`` pointing up, turned into
      rows with ``y = 127 - raw_y``: the scene as a person sees it. It is the transpose of the
      ``"spikingjelly"`` picture.

    Raises:
        EventFileError: no ``#!AER-DAT2.0`` first line, a header line without its newline, a body
            that is not a whole number of 8-byte events, or a negative timestamp.

    Example:
        >>> import struct, tempfile
        >>> from pathlib import Path
        >>> tmp = tempfile.TemporaryDirectory()
        >>> path = Path(tmp.name) / "cat_0.aedat"
        >>> address = (2 << 8) | (1 << 1)  # raw_y = 2, raw_x = 1, raw polarity 0 (ON)
        >>> events = struct.pack(">Ii", address, 10) + struct.pack(">Ii", address | 1, 20)  # (address, t)
        >>> _ = path.write_bytes(b"#!AER-DAT2.0\\r\\n" + events)
        >>> read_aedat2_dvs128(path).tolist()  # (t, x, y, p): x = 127 - raw_y, y = 127 - raw_x
        [(10, 125, 126, 1), (20, 125, 126, 0)]
        >>> read_aedat2_dvs128(path, coordinates="upright").tolist()  # the transpose
        [(10, 126, 125, 1), (20, 126, 125, 0)]
        >>> tmp.cleanup()
    """
    if coordinates not in AEDAT2_COORDINATES:
        raise ValueError(f"expected coordinates in {AEDAT2_COORDINATES}, got {coordinates!r}")
    path = Path(path)
    data = path.read_bytes()
    if not data.startswith(b"#!AER-DAT2.0"):
        raise EventFileError(path, 0, f"expected an AEDAT 2.0 file starting with '#!AER-DAT2.0', got {data[:16]!r}")
    body = _skip_hash_header(path, data)
    size = len(data) - body
    whole = size - size % 8
    if whole != size:
        raise EventFileError(
            path,
            body + whole,
            f"truncated AEDAT 2.0 file: {size} bytes of events after the {body}-byte header is not a "
            f"whole number of 8-byte events; the last event has only {size - whole} of its 8 bytes",
        )
    records = np.frombuffer(data, dtype=[("address", ">u4"), ("t", ">i4")], offset=body)
    address = records["address"].astype(np.int64)
    t = records["t"].astype(np.int64)
    keep = np.flatnonzero((address & 0x80008000) == 0)  # bit 15 / bit 31: special events
    negative = np.flatnonzero(t[keep] < 0)
    if negative.size:
        i = int(keep[negative[0]])
        raise EventFileError(path, body + 8 * i, f"event {i} has a negative timestamp {int(t[i])} µs")
    address, t = address[keep], t[keep]
    raw_x = (address >> 1) & 0x7F
    raw_y = (address >> 8) & 0x7F
    p = 1 - (address & 1)
    top = _DVS128_SIZE - 1
    if coordinates == "spikingjelly":
        x, y = top - raw_y, top - raw_x
    else:
        x, y = top - raw_x, top - raw_y
    return _pack(t, x, y, p)


# --------------------------------------------------------------------------------------------
# DVS128 Gesture
# --------------------------------------------------------------------------------------------


def read_aedat31_polarity(path: str | os.PathLike, sensor_size: tuple[int, int] = (128, 128)) -> np.ndarray:
    """Read the polarity events of an AEDAT 3.1 recording (DVS128 Gesture).

    Layout: text header lines (``#!AER-DAT3.1`` first, ``#!END-HEADER`` last, CRLF-terminated),
    then packets. Each packet is a 28-byte little-endian header (``uint16`` eventType,
    ``uint16`` eventSource, ``uint32`` eventSize, eventTSOffset, eventTSOverflow, eventCapacity,
    eventNumber, eventValid) followed by eventCapacity x eventSize bytes. Polarity packets
    (eventType 1) hold 8-byte events: ``uint32`` data (bit 0 = valid, bit 1 = polarity with
    1 = ON, bits 2-16 = ``y``, bits 17-31 = ``x``) and ``int32`` timestamp; the full timestamp is
    ``timestamp | eventTSOverflow << 31``. The first eventNumber events of a packet are read and
    those whose valid bit is 0 are dropped (as libcaer / dv-python do). Other packet types
    (special, IMU, frames) are skipped.

    Raises:
        EventFileError: a missing ``#!AER-DAT3.1`` / ``#!END-HEADER``, a packet header or body cut
            short (truncated file), a polarity packet whose eventSize is not 8 or whose eventNumber
            exceeds its eventCapacity, or an event outside ``sensor_size``.

    Example:
        >>> import struct, tempfile
        >>> from pathlib import Path
        >>> tmp = tempfile.TemporaryDirectory()
        >>> path = Path(tmp.name) / "user01_led.aedat"
        >>> header = b"#!AER-DAT3.1\\r\\n#!END-HEADER\\r\\n"
        >>> packet = struct.pack("<HHIIIIII", 1, 0, 8, 4, 0, 2, 2, 2)  # polarity packet of 2 events of 8 bytes
        >>> on = struct.pack("<Ii", 1 | 1 << 1 | 5 << 2 | 3 << 17, 1000)  # valid, ON, y = 5, x = 3, t = 1000
        >>> off = struct.pack("<Ii", 1 | 6 << 2 | 4 << 17, 1500)  # valid, OFF, y = 6, x = 4, t = 1500
        >>> _ = path.write_bytes(header + packet + on + off)
        >>> read_aedat31_polarity(path).tolist()  # (t, x, y, p)
        [(1000, 3, 5, 1), (1500, 4, 6, 0)]
        >>> _ = path.write_bytes(header + packet + on)  # the second event is missing
        >>> try:
        ...     read_aedat31_polarity(path)
        ... except EventFileError as err:
        ...     print(err.offset, err.problem)
        28 truncated packet: its header declares 2 events of 8 bytes, but only 8 bytes follow
        >>> tmp.cleanup()
    """
    path = Path(path)
    data = path.read_bytes()
    if not data.startswith(b"#!AER-DAT3.1"):
        raise EventFileError(path, 0, f"expected an AEDAT 3.1 file starting with '#!AER-DAT3.1', got {data[:16]!r}")
    end = data.find(_AEDAT31_END_HEADER)
    if end < 0:
        raise EventFileError(path, 0, "no '#!END-HEADER' line: the header never ends (truncated file?)")
    pos = end + len(_AEDAT31_END_HEADER)
    chunks: list[tuple[np.ndarray, np.ndarray, int]] = []  # (data words, timestamps, offset of event 0)
    while pos < len(data):
        if len(data) - pos < _AEDAT31_PACKET_HEADER.itemsize:
            raise EventFileError(
                path, pos, f"truncated packet header: {len(data) - pos} bytes left, a packet header has 28"
            )
        head = np.frombuffer(data, dtype=_AEDAT31_PACKET_HEADER, count=1, offset=pos)[0]
        size, capacity, number = int(head["size"]), int(head["capacity"]), int(head["number"])
        body = pos + _AEDAT31_PACKET_HEADER.itemsize
        if body + size * capacity > len(data):
            raise EventFileError(
                path,
                pos,
                f"truncated packet: its header declares {capacity} events of {size} bytes, but only "
                f"{len(data) - body} bytes follow",
            )
        if int(head["type"]) == _AEDAT31_POLARITY:
            if size != 8:
                raise EventFileError(path, pos, f"polarity packet with eventSize {size}, expected 8")
            if number > capacity:
                raise EventFileError(path, pos, f"packet with eventNumber {number} > eventCapacity {capacity}")
            words = np.frombuffer(data, dtype=[("data", "<u4"), ("t", "<i4")], count=number, offset=body)
            t = words["t"].astype(np.int64) | (int(head["ts_overflow"]) << 31)
            chunks.append((words["data"].astype(np.int64), t, body))
        pos = body + size * capacity
    if not chunks:
        return np.zeros(0, dtype=EVENT_DTYPE)
    word = np.concatenate([c[0] for c in chunks])
    t = np.concatenate([c[1] for c in chunks])
    offsets = np.concatenate([c[2] + 8 * np.arange(len(c[0])) for c in chunks])
    valid = np.flatnonzero(word & 1)
    word, t, offsets = word[valid], t[valid], offsets[valid]
    x = (word >> 17) & 0x7FFF
    y = (word >> 2) & 0x7FFF
    p = (word >> 1) & 1
    _check_in_sensor(path, x, y, sensor_size, offsets)
    negative = np.flatnonzero(t < 0)
    if negative.size:
        raise EventFileError(path, int(offsets[negative[0]]), f"negative timestamp {int(t[negative[0]])} µs")
    return _pack(t, x, y, p)


def read_gesture_labels(path: str | os.PathLike, num_classes: int = 11) -> list[GestureWindow]:
    """Read a DVS128 Gesture ``userNN_<lighting>_labels.csv``.

    The file is text: the header ``class,startTime_usec,endTime_usec``, then one row per gesture
    with a class ``1..num_classes`` and its window on the recording's clock. Rows are returned in
    file order (a class may repeat, and classes need not be in order), classes shifted to
    ``0..num_classes-1``.

    Raises:
        EventFileError: a wrong header, a row that is not three integers, a class outside
            ``1..num_classes`` or a window with ``end <= start``; the message names the line and
            its byte offset.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> tmp = tempfile.TemporaryDirectory()
        >>> path = Path(tmp.name) / "user01_led_labels.csv"
        >>> _ = path.write_text("class,startTime_usec,endTime_usec\\n1,1000,2000\\n11,2500,4000\\n")
        >>> read_gesture_labels(path)  # classes 1..11 become 0..10
        [GestureWindow(label=0, start_us=1000, end_us=2000), GestureWindow(label=10, start_us=2500, end_us=4000)]
        >>> _ = path.write_text("class,startTime_usec,endTime_usec\\n12,1000,2000\\n")
        >>> try:
        ...     read_gesture_labels(path)
        ... except EventFileError as err:
        ...     print(err.problem)
        line 2: expected a class in 1..11, got 12
        >>> tmp.cleanup()
    """
    path = Path(path)
    text = path.read_bytes()
    lines = text.splitlines(keepends=True)
    if not lines:
        raise EventFileError(path, 0, "empty labels file; expected the header 'class,startTime_usec,endTime_usec'")
    header = lines[0].decode("ascii", "replace").strip().replace(" ", "")
    if header != "class,startTime_usec,endTime_usec":
        raise EventFileError(path, 0, f"expected the header 'class,startTime_usec,endTime_usec', got {header!r}")
    windows = []
    offset = len(lines[0])
    for number, line in enumerate(lines[1:], start=2):
        row = line.decode("ascii", "replace").strip()
        here, offset = offset, offset + len(line)
        if not row:
            continue
        fields = [f.strip() for f in row.split(",")]
        if len(fields) != 3 or not all(f.isdigit() for f in fields):
            raise EventFileError(path, here, f"line {number}: expected 'class,start,end' as three integers, got {row!r}")
        cls, start, end = (int(f) for f in fields)
        if not 1 <= cls <= num_classes:
            raise EventFileError(path, here, f"line {number}: expected a class in 1..{num_classes}, got {cls}")
        if end <= start:
            raise EventFileError(path, here, f"line {number}: expected endTime > startTime, got {start}..{end}")
        windows.append(GestureWindow(cls - 1, start, end))
    return windows


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _skip_hash_header(path: Path, data: bytes) -> int:
    """Offset of the first byte after the leading ``#`` lines (each must end with a newline)."""
    pos = 0
    while pos < len(data) and data[pos] == ord("#"):
        newline = data.find(b"\n", pos)
        if newline < 0:
            raise EventFileError(path, pos, "header line without a newline: the file ends inside its header")
        pos = newline + 1
    return pos


def _check_in_sensor(path: Path, x: np.ndarray, y: np.ndarray, sensor_size, offsets: np.ndarray) -> None:
    width, height = sensor_size
    outside = np.flatnonzero((x >= width) | (y >= height))
    if outside.size:
        i = outside[0]
        raise EventFileError(
            path,
            int(offsets[i]),
            f"event at (x={int(x[i])}, y={int(y[i])}) lies outside the {width} x {height} sensor "
            "(corrupt file, or not this dataset's sensor)",
        )


def _pack(t: np.ndarray, x: np.ndarray, y: np.ndarray, p: np.ndarray) -> np.ndarray:
    events = np.empty(len(t), dtype=EVENT_DTYPE)
    events["t"], events["x"], events["y"], events["p"] = t, x, y, p
    return events
