"""One place decides whether Triton's kernels are compiled or interpreted: ``bsnn_lightning/engine/triton_mode.py``."""

import ast
import os
import warnings
from pathlib import Path

import pytest

from bsnn_lightning.engine import triton_mode
from bsnn_lightning.engine.triton_mode import VARIABLE, choose_triton_mode, environment_for, interprets

ROOT = Path(__file__).resolve().parents[1]
HOME = ROOT / "bsnn_lightning" / "engine" / "triton_mode.py"


def _sources():
    for folder in ("bsnn_lightning", "bench", "tests"):
        yield from sorted((ROOT / folder).rglob("*.py"))
    yield ROOT / "conftest.py"


def names_the_variable(source: str, filename: str) -> list[int]:
    """Lines where code names Triton's mode variable: as a string (an environment key, a setenv argument) or as
    a keyword (``dict(os.environ, TRITON_INTERPRET=...)``); prose that mentions it is not code."""
    lines = []
    with warnings.catch_warnings():  # a file's own invalid escapes are its business
        warnings.simplefilter("ignore", SyntaxWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        tree = ast.parse(source, filename)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and node.value == VARIABLE:
            lines.append(node.lineno)
        elif isinstance(node, ast.keyword) and node.arg == VARIABLE:
            lines.append(node.value.lineno)
    return lines


def test_only_the_triton_mode_module_names_the_variable():
    found = []
    for path in _sources():
        if path == HOME or "__pycache__" in path.parts:
            continue
        source = path.read_text()
        if VARIABLE in source:  # (a file that does not contain it cannot name it: only these are parsed)
            found += [f"{path.relative_to(ROOT)}:{line}" for line in names_the_variable(source, str(path))]
    assert found == [], f"set the Triton mode through bsnn_lightning.engine.triton_mode, not here: {found}"


def test_the_scan_finds_each_way_of_naming_it():
    source = (
        f'os.environ["{VARIABLE}"] = "1"\n'
        f'os.environ.setdefault("{VARIABLE}", "1")\n'
        f"env = dict(os.environ, {VARIABLE}='0')\n"
        f'monkeypatch.delenv("{VARIABLE}")\n'
        f'"""{VARIABLE} in a sentence is prose"""\n'
    )
    assert names_the_variable(source, "example.py") == [1, 2, 3, 4]
    assert names_the_variable(HOME.read_text(), str(HOME))  # the module itself does name it


@pytest.mark.parametrize(
    "value, interpret", [("1", True), ("true", True), ("ON", True), ("0", False), ("", False), ("off", False)]
)
def test_auto_keeps_the_environment_s_word(value, interpret):
    assert interprets("auto", {VARIABLE: value}) is interpret
    assert interprets("interpret", {VARIABLE: "0"}) is True and interprets("compile", {VARIABLE: "1"}) is False


def test_auto_without_the_variable_follows_the_gpu():
    import torch

    assert interprets("auto", {}) is (not torch.cuda.is_available())


def test_an_unknown_mode_is_refused():
    with pytest.raises(ValueError, match=r"expected a Triton mode in \('auto', 'interpret', 'compile'\), got 'gpu'"):
        interprets("gpu")


def test_subprocess_environment_gets_the_mode_and_keeps_the_rest():
    base = {"PATH": "/bin", VARIABLE: "1"}
    assert environment_for("compile", base) == {"PATH": "/bin", VARIABLE: "0"}
    assert environment_for("interpret", {"PATH": "/bin"}) == {"PATH": "/bin", VARIABLE: "1"}
    assert environment_for("auto", base) == base
    assert base == {"PATH": "/bin", VARIABLE: "1"}  # a copy


def test_the_other_mode_is_refused_once_triton_is_imported():
    """This process imported Triton (the conftest chose its mode first): the mode in force is confirmed, the
    other one raises and leaves the environment alone."""
    from bsnn_lightning.engine import triton_backend

    in_force = triton_backend._interpreted(triton_backend._kernels())
    assert triton_mode.kernels_interpreted() is in_force
    assert triton_mode.triton_interpreted() is in_force
    before = os.environ.get(VARIABLE)
    with pytest.raises(RuntimeError, match="choose the mode before Triton is first imported"):
        choose_triton_mode("compile" if in_force else "interpret")
    assert os.environ.get(VARIABLE) == before
    assert choose_triton_mode("interpret" if in_force else "compile") is in_force
