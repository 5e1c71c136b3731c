"""The GPU check command rehearses on the CPU, and the launcher reads the launch constants it writes."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bsnn_lightning.engine import triton_backend

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_dry_run_passes_every_part():
    done = subprocess.run(
        [sys.executable, "bench/gpu_check.py", "--dry-run"], cwd=ROOT, capture_output=True, text=True, timeout=1800
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    for part in ("triton-tests", "exactness", "no-host-sync", "kernels", "recipe-steps"):
        assert f"[ok] {part}" in done.stdout
    limits = dict(line.rsplit(" ", 2)[:2] for line in done.stdout.split("time limits: ")[1].split("\n")[0].split(", "))
    assert sum(int(v) for v in limits.values()) <= 7 * 60  # the default parts fit an 8-minute lease


def test_tuning_file_is_merged_written_atomically_and_read(tmp_path, monkeypatch):
    monkeypatch.setattr(triton_backend, "TUNING_FILE", tmp_path / "triton_tuning.json")
    triton_backend._tuning.cache_clear()
    try:
        triton_backend.write_tuning({"sm_90": {"bf16": {"NUM_WARPS": 8, "BACKWARD_BLOCK": 256, "FORWARD_CHUNK": 4}}})
        triton_backend.write_tuning({"sm_90": {"fp32": {"NUM_WARPS": 2, "BACKWARD_BLOCK": 64, "FORWARD_CHUNK": 16}}})
        stored = json.loads((tmp_path / "triton_tuning.json").read_text())
        assert stored == {
            "sm_90": {
                "bf16": {"BACKWARD_BLOCK": 256, "FORWARD_CHUNK": 4, "NUM_WARPS": 8},
                "fp32": {"BACKWARD_BLOCK": 64, "FORWARD_CHUNK": 16, "NUM_WARPS": 2},
            }
        }
        assert triton_backend._tuning() == stored
    finally:
        triton_backend._tuning.cache_clear()


def test_launch_constants_are_restored_and_checked(monkeypatch):
    """A sweep's candidate replaces the tuned constants for the calls inside the block, on any device, without
    rewriting the module's globals; nested blocks add to it, and leaving restores the one outside."""
    x = torch.zeros(4, 3)
    defaults = {"FORWARD_CHUNK": 8, "NUM_WARPS": 4, "BACKWARD_BLOCK": 128}
    monkeypatch.setattr(
        triton_backend, "_tuning", lambda: pytest.fail("a sweep times its candidate, not the tuned table")
    )
    globals_before = (triton_backend.NUM_WARPS, triton_backend.BACKWARD_BLOCK, triton_backend.FORWARD_CHUNK)
    assert globals_before == tuple(defaults[k] for k in ("NUM_WARPS", "BACKWARD_BLOCK", "FORWARD_CHUNK"))
    with triton_backend.launch_constants(NUM_WARPS=8, BACKWARD_BLOCK=256):
        assert triton_backend._launch(x, interpreted=False) == {**defaults, "NUM_WARPS": 8, "BACKWARD_BLOCK": 256}
        with triton_backend.launch_constants(FORWARD_CHUNK=16):
            chosen = {"FORWARD_CHUNK": 16, "NUM_WARPS": 8, "BACKWARD_BLOCK": 256}
            assert triton_backend._launch(x, interpreted=False) == chosen
        assert triton_backend._launch(x, interpreted=False)["FORWARD_CHUNK"] == 8
        assert (triton_backend.NUM_WARPS, triton_backend.BACKWARD_BLOCK, triton_backend.FORWARD_CHUNK) == globals_before
    assert triton_backend._launch(x, interpreted=False) == defaults
    with pytest.raises(ValueError, match=r"unknown launch constants \['BLOCK'\]"):
        with triton_backend.launch_constants(BLOCK=1):
            pass
    assert all(c["BACKWARD_BLOCK"] == 32 * c["NUM_WARPS"] for c in triton_backend.LAUNCH_CANDIDATES)
