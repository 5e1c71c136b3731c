"""Shared test setup (for the tests and for the docstring examples in the package, run as doctests).

Without a CUDA GPU, Triton kernels run through Triton's interpreter on the CPU. Triton reads
``TRITON_INTERPRET`` when a kernel is defined, so it is set here, before any test module imports the
package's kernels (``import torch`` and ``torch.cuda.is_available()`` do not import triton;
``import lightning`` does, which is why this happens at the top of the conftest). With a GPU the same
tests run the compiled kernels.
"""

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
