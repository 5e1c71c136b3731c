"""Shared test setup (for the tests, for the docstring examples in the package, run as doctests, and for the
code blocks of README.md and docs/*.md, run by Sybil: see the end of this file).

Without a CUDA GPU, Triton kernels run through Triton's interpreter on the CPU; with one the same tests run the
compiled kernels. The package's rule decides (``bsnn_lightning/engine/triton_mode.py``, ``"auto"``), applied
here before anything imports Triton: Triton fixes the mode when it is first imported (``import torch`` and
``torch.cuda.is_available()`` do not import it; ``import lightning`` and ``import bsnn_lightning`` do), so the
rule's file is loaded on its own, without importing the package.
"""

import functools
import importlib.util
import os
import subprocess
from pathlib import Path

import pytest
import torch


def _choose_triton_mode() -> None:
    spec = importlib.util.spec_from_file_location(
        "bsnn_triton_mode", Path(__file__).resolve().parent / "bsnn_lightning" / "engine" / "triton_mode.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.choose_triton_mode("auto")


_choose_triton_mode()
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


# --- the code blocks of README.md and docs/*.md --------------------------------------------------------------
# Sybil (https://github.com/simplistix/sybil) finds the fenced blocks. ```python blocks run in the fast subset, in
# one namespace per document; ```bash blocks run each as one `bash -eu` script in a subprocess, in the slow tests.
# Both run in a scratch folder that sees the repository's docs/, recipes/, bench/ and tests/, so relative paths
# work as shown and whatever a block writes (runs/, caches) lands there. A block that cannot run here is preceded
# by `<!-- skip: next "the reason" -->`, which pytest reports as a skip with that reason. ```text and ```yaml
# blocks are not run (tests/test_docs.py checks that every fenced block names its language).

ROOT = Path(__file__).resolve().parent
SHELL_TIMEOUT_S = 600


def run_shell_block(example) -> None:
    """Sybil evaluator: run a ```bash block with this checkout's package first on the path; fail on a non-zero
    exit status, showing the ends of both streams."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", str(example.parsed)], capture_output=True, text=True, env=env,
        timeout=SHELL_TIMEOUT_S,
    )  # fmt: skip
    if result.returncode != 0:
        raise AssertionError(
            f"{example.path}, line {example.line}: exit status {result.returncode}\n"
            f"--- stdout (end)\n{result.stdout[-3000:]}\n--- stderr (end)\n{result.stderr[-3000:]}"
        )


@functools.cache
def _markdown_collector():
    # imported here: an environment that runs only some test files (CI's SpikingJelly 0.0.0.0.14 one) needs no Sybil
    from sybil import Sybil
    from sybil.parsers.markdown import CodeBlockParser, PythonCodeBlockParser, SkipParser

    parsers = [PythonCodeBlockParser(), CodeBlockParser("bash", run_shell_block), SkipParser()]
    return Sybil(parsers=parsers, patterns=["*.md"], path=str(ROOT), fixtures=["docs_workdir"]).pytest()


def pytest_collect_file(file_path, parent):
    if file_path.suffix == ".md" and (file_path == ROOT / "README.md" or file_path.parent == ROOT / "docs"):
        return _markdown_collector()(file_path, parent)
    return None


def pytest_collection_modifyitems(items):
    """```bash blocks are slow tests, and so is a `skip: next` directive in front of one (left in a run without
    its block, it would apply to the document's next block instead)."""
    for item in items:
        example = getattr(item, "example", None)
        if example is not None and _runs_shell(example.region, example.document):
            item.add_marker(pytest.mark.slow)


def _runs_shell(region, document) -> bool:
    from sybil.evaluators.skip import Skipper

    if region.evaluator is run_shell_block:
        return True
    if not isinstance(region.evaluator, Skipper) or region.parsed[0] != "next":
        return False
    following = [r for start, r in document.regions if start > region.start]
    return bool(following) and following[0].evaluator is run_shell_block


@pytest.fixture
def docs_workdir(tmp_path, monkeypatch):
    """A scratch working folder for a documentation block, with the repository's folders its paths name."""
    for name in ("docs", "recipes", "bench", "tests"):
        (tmp_path / name).symlink_to(ROOT / name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BSNN_LIGHTNING_CACHE", str(tmp_path / "cache"))
    return tmp_path
