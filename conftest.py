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


@pytest.fixture
def poisoned_triton_outputs(monkeypatch):
    """Every buffer the triton backend's launchers allocate starts as NaN: an element no kernel writes cannot
    pass (the Triton test modules use it for every test)."""
    from bsnn_lightning.engine import triton_backend

    def poisoned(shape, dtype, device):
        return torch.full(shape, float("nan"), dtype=dtype, device=device)

    monkeypatch.setattr(triton_backend, "_empty", poisoned)


@pytest.fixture(autouse=True)
def _restore_determinism_flags():
    """A Trainer built with ``deterministic`` (the TET recipes) sets process-wide torch flags; give every test
    the flags it started with, whatever the tests before it built."""
    saved = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.benchmark,
        os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    )
    yield
    torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
    torch.backends.cudnn.benchmark = saved[2]
    if saved[3] is None:
        os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
    else:
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = saved[3]
