"""Shared test setup (for the tests and for the docstring examples in the package, run as doctests).

Without a CUDA GPU, Triton kernels run through Triton's interpreter on the CPU. Triton reads
``TRITON_INTERPRET`` when a kernel is defined, so it is set here, before any test module imports the
package's kernels (``import torch`` and ``torch.cuda.is_available()`` do not import triton;
``import lightning`` does, which is why this happens at the top of the conftest). With a GPU the same
tests run the compiled kernels.
"""

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
# "auto" leaves CPU calls to the reference here: the fused CPU backend compiles (seconds per shape class), which a
# test that only trains a small model should not pay; tests/test_cpu_backend.py runs it by name, and turns auto's
# pick back on where it tests it
os.environ.setdefault("BSNN_CPU_AUTO", "off")


@pytest.fixture
def poisoned_triton_outputs(monkeypatch):
    """Every buffer the triton backend's launchers allocate starts as NaN: an element no kernel writes cannot
    pass (the Triton test modules use it for every test)."""
    from bsnn_lightning.engine import triton_backend

    def poisoned(shape, dtype, device):
        return torch.full(shape, float("nan"), dtype=dtype, device=device)

    monkeypatch.setattr(triton_backend, "_empty", poisoned)
