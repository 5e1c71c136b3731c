"""The stand-in CUDA driver: what lets the real launcher specialise a kernel for a GPU on a machine without one.

The launcher's :class:`LaunchPlan` is launched as on a GPU, with Triton's interpreter off, this driver answering
the few questions ``JITFunction.run`` asks before compiling (the target, the device, the stream), and a
``jit_cache_hook`` that records each compile request (signature, constexprs, 16-byte alignment and
equal-to-1 attributes, ``num_warps``) and cancels it: nothing is compiled or launched here.
"""

from __future__ import annotations

import contextlib


class Recorder:
    """A stand-in CUDA driver and a jit_cache_hook that records each compile request and cancels it."""

    def __init__(self, arch: int) -> None:
        self.arch = arch
        self.captured: list[dict] = []

    @contextlib.contextmanager
    def active(self):
        import torch
        from triton import knobs
        from triton.backends.compiler import GPUTarget
        from triton.runtime.driver import driver

        arch = self.arch

        class FakeCudaDriver:  # only what JITFunction.run asks before the compile hook
            def get_current_target(self):
                return GPUTarget("cuda", arch, 32)

            def get_current_device(self):
                return 0

            def get_current_stream(self, device=None):
                return 0

            def get_active_torch_device(self):
                return torch.device("cpu")

        def hook(*, key, repr, fn, compile, is_manual_warmup, already_compiled):
            self.captured.append(
                dict(
                    kernel=fn.name,
                    module=getattr(fn.module, "__name__", str(fn.module)),
                    signature=dict(compile["signature"]),
                    constants=dict(compile["constants"]),
                    attrs=dict(compile["configs"][0]),
                    options=dict(num_warps=compile["num_warps"], enable_fp_fusion=compile["enable_fp_fusion"]),
                )
            )
            return True  # cancel: no compile, no launch

        driver.set_active(FakeCudaDriver())
        knobs.runtime.jit_cache_hook = hook
        try:
            yield self
        finally:
            knobs.runtime.jit_cache_hook = None  # the stand-in driver stays: there is no real one here

    def take(self) -> list[dict]:
        out, self.captured = self.captured, []
        return out
