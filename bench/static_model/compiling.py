"""Compile one launch for a GPU architecture (in a worker process) with the ptxas inside the triton wheel, and
read what ptxas reports (registers, stack, spills) and the SASS (``cuobjdump -sass``)."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import subprocess
import tempfile
import time
import traceback
from pathlib import Path


PTXAS = {
    "regs": re.compile(r"Used (\d+) registers"),
    "stack": re.compile(r"(\d+) bytes stack frame"),
    "spill_stores": re.compile(r"(\d+) bytes spill stores"),
    "spill_loads": re.compile(r"(\d+) bytes spill loads"),
}


def read_ptxas_log(log: str) -> dict:
    """Registers, stack frame and spill bytes from ptxas's ``-v`` log (the largest figure where it prints
    several, e.g. one per function); 0 where it prints none."""
    out = {}
    for name, pattern in PTXAS.items():
        values = [int(v) for v in pattern.findall(log)]
        out[name] = max(values) if values else 0
    return out


def compile_kernel(args) -> dict:
    """Compile ``(launch, arch, keep)``: a result dict with ``ok``, the ptxas figures, shared memory, the SASS
    (``--keep DIR``: ptx, ttgir, SASS and the ptxas log written there), or the error."""
    launch, arch, keep = args
    import triton
    from triton import knobs
    from triton.backends.compiler import GPUTarget

    result = dict(label=launch.label, kernel=launch.kernel, arch=arch, ok=False)
    cache = tempfile.mkdtemp(prefix="kernels-static-")
    knobs.cache.dir = cache  # a fresh cache: ptxas really runs and prints its log
    knobs.nvidia.dump_ptxas_log = True
    start = time.perf_counter()
    try:
        import importlib

        fn = getattr(importlib.import_module(launch.module), launch.kernel)
        source = triton.compiler.ASTSource(fn=fn, signature=launch.signature, constexprs=launch.constants,
                                           attrs=launch.attrs)
        log = io.StringIO()
        with contextlib.redirect_stdout(log):
            compiled = triton.compile(source, target=GPUTarget("cuda", arch, 32), options=launch.options)
        result.update(read_ptxas_log(log.getvalue()))
        result["shared"] = compiled.metadata.shared
        tools = Path(triton.__file__).parent / "backends" / "nvidia" / "bin"
        with tempfile.NamedTemporaryFile(suffix=".cubin", delete=False) as f:
            f.write(compiled.asm["cubin"])
        try:
            sass = subprocess.run([str(tools / "cuobjdump"), "-sass", f.name], capture_output=True, text=True,
                                  check=True).stdout
        finally:
            os.unlink(f.name)
        result["sass"] = sass
        if keep:
            stem = Path(keep) / f"sm{arch}-{re.sub(r'[^A-Za-z0-9_.=-]+', '_', launch.label)}"
            stem.with_suffix(".ptx").write_text(compiled.asm["ptx"])
            stem.with_suffix(".ttgir").write_text(compiled.asm["ttgir"])
            stem.with_suffix(".sass").write_text(sass)
            stem.with_suffix(".ptxas.log").write_text(log.getvalue())
        result["ok"] = True
    except Exception as error:  # a compile failure is a result
        result["error"] = f"{type(error).__name__}: {error}"[-3000:]
        result["traceback"] = traceback.format_exc()[-4000:]
    finally:
        shutil.rmtree(cache, ignore_errors=True)
        result["seconds"] = round(time.perf_counter() - start, 1)
    return result
