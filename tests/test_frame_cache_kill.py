"""A frame-cache build killed mid-way (a real process with real worker processes, killed by a real signal)
leaves no worker behind and no half-written sample file, and the next build completes the cache."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bsnn_lightning.data import events_to_frames
from bsnn_lightning.data.formats import read_atis_bin
from bsnn_lightning.data.cache import build_frame_cache, cache_folder, load_frames
from archive_writers import atis_bytes, random_events  # tests/archive_writers.py

SCRIPT = Path(__file__).parent / "scripts" / "frame_cache_build.py"
sys.path.insert(0, str(SCRIPT.parent))
import frame_cache_build  # noqa: E402  (the script's sources and frame spec)

N_FILES = 60  # 60 x 0.3 s over 2 workers: 9 s if nothing stops the build


def _alive(pid: int) -> bool:
    """Running or sleeping (a zombie has exited: only its parent's reaper is missing)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


@pytest.mark.slow  # a process that imports torch, per signal
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
@pytest.mark.parametrize(
    "sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT],
    ids=["SIGKILL", "SIGTERM", "SIGINT"],
)
def test_a_build_killed_mid_way_leaves_no_worker_and_no_half_file(tmp_path, sig):
    rng = np.random.default_rng(0)
    (tmp_path / "events").mkdir()
    (tmp_path / "pids").mkdir()
    for i in range(N_FILES):
        (tmp_path / "events" / f"{i:03d}.bin").write_bytes(atis_bytes(random_events(rng, 200, (34, 34), 100_000)))
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "BSNN_TEST_PIDS": str(tmp_path / "pids")}
    build = subprocess.Popen([sys.executable, str(SCRIPT), str(tmp_path), "2"], env=env, stderr=subprocess.PIPE)
    workers: list[int] = []
    try:
        listed = frame_cache_build.sources(tmp_path)
        folder, params = cache_folder(tmp_path / "cache", "kill-test", frame_cache_build.SPEC, listed)
        frames_dir = folder / "frames"
        _wait_for(lambda: len(list((tmp_path / "pids").iterdir())) >= 2 and len(list(frames_dir.glob("*.npy"))) >= 2,
                  120, "two workers at work and two sample files written")
        workers = [int(p.name) for p in (tmp_path / "pids").iterdir()]
        before = len(list(frames_dir.glob("*.npy")))
        build.send_signal(sig)
        _wait_for(lambda: not any(_alive(pid) for pid in workers), 5, f"the workers {workers} to exit")
        build.wait(timeout=120)  # (an interpreter that imported torch can take seconds to tear down under load)
    finally:  # a failed test leaves nothing running either
        if build.poll() is None:
            build.kill()
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
    assert build.returncode != 0
    assert not (folder / "manifest.json").exists()
    written = sorted(frames_dir.glob("*.npy"))
    assert 2 <= len(written) <= before + 2  # stopped at once (at most the files in flight were finished), not
    # after the queued ones (Ctrl-C used to wait for the whole build)
    for path in written:  # every sample file is whole: a killed writer leaves at most a *.tmp file
        assert load_frames(path).shape == frame_cache_build.SPEC.shape
    manifest = build_frame_cache(folder, params, listed, frame_cache_build.read_atis_bin, frame_cache_build.SPEC, progress=False)
    for meta, source in zip(manifest["samples"], listed):
        expected = events_to_frames(read_atis_bin(source.path), (34, 34), 4, "number")
        np.testing.assert_array_equal(load_frames(frames_dir / meta["file"]), expected)
