"""Build a frame cache with worker processes, slowly; run (and killed mid-build) by tests/test_frame_cache_kill.py.

    python tests/scripts/frame_cache_build.py FOLDER WORKERS

FOLDER holds the recordings (FOLDER/events/*.bin, written by the test); the cache goes to FOLDER/cache and
each worker writes its process id into FOLDER/pids/ when it starts a file.
"""

import os
import sys
import time
from pathlib import Path

from bsnn_lightning.data.formats import read_atis_bin
from bsnn_lightning.data.cache import FrameSpec, SampleSpec, SourceFile, build_frame_cache, cache_folder

SPEC = FrameSpec(sensor_size=(34, 34), time_steps=4, split_by="number", resize=None)
SECONDS_PER_FILE = 0.3


def sources(folder: Path) -> list[SourceFile]:
    files = sorted((folder / "events").glob("*.bin"))
    return [SourceFile(p, p.name, (SampleSpec(p.stem, i % 10, "train"),)) for i, p in enumerate(files)]


def slow_reader(path: Path):
    pids = Path(os.environ["BSNN_TEST_PIDS"])
    (pids / str(os.getpid())).touch()
    time.sleep(SECONDS_PER_FILE)
    return read_atis_bin(path, (34, 34))


def main(folder: Path, workers: int) -> None:
    listed = sources(folder)
    cache, params = cache_folder(folder / "cache", "kill-test", SPEC, listed)
    build_frame_cache(cache, params, listed, slow_reader, SPEC, workers=workers, progress=False)


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
