"""The cpu backend keeps freed host memory for reuse (engine/host_memory.py): checked by glibc's own account of
its memory (``mallinfo2``: bytes in mmapped blocks), in fresh processes, since the settings are process-wide."""

import json
import subprocess
import sys

import pytest

from bsnn_lightning.engine import host_memory

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or isinstance(host_memory._glibc(), str), reason="needs glibc"
)

#: allocates a 64 MiB tensor and reports glibc's bytes in mmapped blocks while it lives, and the module's state
PROBE = r"""
import ctypes, json, os, sys
import torch
from bsnn_lightning.engine import SpikingJellyLIF, host_memory, multistep

class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info


def mapped_growth():
    before = libc.mallinfo2().hblkhd
    big = torch.empty(16 << 20)  # 64 MiB
    big.fill_(1.0)
    return libc.mallinfo2().hblkhd - before


report = {"untouched": mapped_growth(), "untouched_state": host_memory.state()}
if sys.argv[1] == "cpu-call":  # what a user's first training step does
    multistep(torch.ones(2, 4, 8), SpikingJellyLIF(), {"tau": 2.0, "threshold": 1.0}, backend="cpu")
else:
    host_memory.keep_freed_memory()
report.update(mapped_growth=mapped_growth(), state=host_memory.state())
print(json.dumps(report))
"""


def probe(how: str, **env: str) -> dict:
    import os

    environment = {**os.environ, "BSNN_CPU_AUTO": "off", **env}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, how], capture_output=True, text=True, env=environment, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_cpu_backend_call_keeps_large_blocks_in_the_heap():
    kept = probe("cpu-call")
    assert kept["mapped_growth"] < 1 << 20, kept  # the 64 MiB came from the heap
    assert kept["state"].startswith("kept"), kept


@pytest.mark.slow
def test_system_setting_leaves_malloc_alone():
    system = probe("cpu-call", BSNN_CPU_MALLOC="system")
    assert system["mapped_growth"] >= 64 << 20, system
    assert "BSNN_CPU_MALLOC=system" in system["state"], system


@pytest.mark.slow  # a fresh process (the settings are process-wide): 5 s of imports
def test_keep_freed_memory_directly():
    report = probe("direct")
    assert report["untouched"] >= 64 << 20, report  # glibc's default: a new mapping for the 64 MiB
    assert "not set" in report["untouched_state"], report
    assert report["mapped_growth"] < 1 << 20, report  # after: from the heap
    assert report["state"].startswith("kept"), report


def test_a_wrong_setting_names_the_choices(monkeypatch):
    monkeypatch.setenv(host_memory.MODE_VARIABLE, "always")
    with pytest.raises(ValueError, match=r"expected BSNN_CPU_MALLOC 'keep' or 'system', got 'always'"):
        host_memory.mode()
