"""The package is layered: a module imports only from its own layer or the layers below it, at module level
and inside functions alike (a function-level import is still a dependency, just a hidden one)."""

import ast
from pathlib import Path

import pytest

import bsnn_lightning

#: layer name -> the top-level modules or subpackages of bsnn_lightning in it, lowest layer first
#: ("bsnn_lightning" is the package's own __init__, the public facade)
LAYERS = {
    "foundations": ("engine", "atomic", "user_warnings", "validation"),
    "neuron parameters": ("neuron_params",),
    "neurons": ("neurons",),
    "adapters": ("adapters",),
    "conversion": ("convert",),
    "building blocks": (
        "analysis", "figures", "data", "models", "losses", "readouts", "metrics", "schedulers", "nir_exchange",
    ),
    "training": ("classifier", "callbacks", "memory"),
    "facade": ("bsnn_lightning",),
    "report": ("report",),
    "command line": ("cli",),
}
RANK = {part: (rank, layer) for rank, (layer, parts) in enumerate(LAYERS.items()) for part in parts}
#: inside the report package, the same rule: its modules and subpackages, lowest first ("report" is its __init__)
REPORT_LAYERS = {
    "report basics": ("settings", "stats", "formatting"),
    "report runs": ("neuron_specs", "data_cache"),
    "one run": ("training",),
    "run pool and task pages": ("pool", "task_pages"),
    "report experiments": ("experiments",),
    "report text": ("markdown",),
    "report command": ("runner",),
    "report facade": ("report",),
}
REPORT_RANK = {part: (rank, layer) for rank, (layer, parts) in enumerate(REPORT_LAYERS.items()) for part in parts}
#: inside the data package too (Tonic's split: readers and formats, then caches, simulation and transforms, then the
#: datasets, then the DataModules); the compatibility modules re-export moved modules under their former names
DATA_LAYERS = {
    "data basics": ("events", "formats", "archives", "loading", "splits", "released_splits"),
    "data building blocks": ("cache", "sim", "transforms"),
    "datasets": ("digits", "intervals", "datasets"),
    "data modules": ("datamodules", "tonic_datasets"),
    "data compatibility": ("augment", "spatial_augment", "mixing", "dvs", "released_datamodules"),
    "data facade": ("data",),
}
DATA_RANK = {part: (rank, layer) for rank, (layer, parts) in enumerate(DATA_LAYERS.items()) for part in parts}
PACKAGE = Path(bsnn_lightning.__file__).parent


def package_modules() -> dict[str, tuple[Path, bool]]:
    """Every module of the package: dotted name -> (file, whether it is a package's __init__)."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        modules[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return modules


MODULES = package_modules()


def top_part(module: str) -> str:
    """``bsnn_lightning.report.runner`` -> ``report``; the package itself -> ``bsnn_lightning``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def layer_of(module: str) -> tuple[int, str]:
    return RANK[top_part(module)]


def package_imports(module: str, source: str, is_package: bool, filename: str):
    """``(imported module, line)`` for every import of a bsnn_lightning module anywhere in ``source``; a
    ``from X import name`` counts as importing ``X.name`` when that is a module, else ``X``."""
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module
            targets = [f"{origin}.{a.name}" if f"{origin}.{a.name}" in MODULES else origin for a in node.names]
        else:
            continue
        for target in targets:
            if target == "bsnn_lightning" or target.startswith("bsnn_lightning."):
                yield target, node.lineno


def upward_imports(module: str, source: str, is_package: bool = False, filename: str = "<source>") -> list[str]:
    """One line per import in ``source`` (the text of ``module``) of a module in a higher layer."""
    rank, layer = layer_of(module)
    found = []
    for target, line in package_imports(module, source, is_package, filename):
        target_rank, target_layer = layer_of(target)
        if target_rank > rank:
            found.append(
                f"{module} (layer {rank}, {layer}) imports {target} (layer {target_rank}, {target_layer}) at line {line}"
            )
    return found


def inner_part(module: str) -> str:
    """The part of a subpackage a module is in: ``bsnn_lightning.report.experiments.loss`` -> ``experiments``,
    ``bsnn_lightning.data.sim.pixel`` -> ``sim``; the subpackage's __init__ -> its own name (``report``)."""
    parts = module.split(".")
    return parts[2] if len(parts) > 2 else parts[1]


report_part = data_part = inner_part


def upward_inner_imports(
    package: str, ranks: dict, module: str, source: str, is_package: bool = False, filename: str = "<source>"
) -> list[str]:
    """One line per import, in a module of the subpackage ``package``, of one of its modules in a higher layer of
    ``ranks`` (its REPORT_RANK or DATA_RANK)."""
    rank, layer = ranks[inner_part(module)]
    found = []
    for target, line in package_imports(module, source, is_package, filename):
        if top_part(target) != package:
            continue
        target_rank, target_layer = ranks[inner_part(target)]
        if target_rank > rank:
            found.append(f"{module} ({layer}) imports {target} ({target_layer}) at line {line}")
    return found


def upward_report_imports(module: str, source: str, is_package: bool = False, filename: str = "<source>") -> list[str]:
    return upward_inner_imports("report", REPORT_RANK, module, source, is_package, filename)


def upward_data_imports(module: str, source: str, is_package: bool = False, filename: str = "<source>") -> list[str]:
    return upward_inner_imports("data", DATA_RANK, module, source, is_package, filename)


def test_every_module_has_a_layer():
    unplaced = sorted(name for name in MODULES if top_part(name) not in RANK)
    assert not unplaced, f"add these modules to a layer in LAYERS: {unplaced}"
    report = [name for name in MODULES if top_part(name) == "report"]
    unplaced = sorted(name for name in report if report_part(name) not in REPORT_RANK)
    assert not unplaced, f"add these modules to a layer in REPORT_LAYERS: {unplaced}"
    data = [name for name in MODULES if top_part(name) == "data"]
    unplaced = sorted(name for name in data if data_part(name) not in DATA_RANK)
    assert not unplaced, f"add these modules to a layer in DATA_LAYERS: {unplaced}"


@pytest.mark.parametrize("package", ["report", "data"])
def test_the_report_and_data_packages_are_layered_too(package):
    upward = {"report": upward_report_imports, "data": upward_data_imports}[package]
    found = []
    for module, (path, is_package) in MODULES.items():
        if top_part(module) == package:
            found += upward(module, path.read_text(encoding="utf-8"), is_package, str(path))
    assert not found, f"imports from a higher layer of the {package} package:\n" + "\n".join(found)


def test_the_inner_checks_refuse_an_upward_import_and_pass_a_downward_one():
    # an experiment importing the runner is refused, the runner importing an experiment is not
    assert upward_report_imports("bsnn_lightning.report.experiments.loss", "from ..runner import figure_files\n") == [
        "bsnn_lightning.report.experiments.loss (report experiments) imports bsnn_lightning.report.runner (report command) at line 1"
    ]
    assert upward_report_imports("bsnn_lightning.report.runner", "from .experiments import EXPERIMENTS\n") == []
    # the simulator importing a dataset is refused, a dataset importing the simulator is not
    assert upward_data_imports("bsnn_lightning.data.sim.pixel", "from ..digits import N_DIGITS\n") == [
        "bsnn_lightning.data.sim.pixel (data building blocks) imports bsnn_lightning.data.digits (datasets) at line 1"
    ]
    assert upward_data_imports("bsnn_lightning.data.digits", "from .sim import SaccadeConfig\n") == []
    # a compatibility module may not be imported inside the data package: everything below it uses the new homes
    assert upward_data_imports("bsnn_lightning.data.datasets.base", "from ..augment import Compose\n") != []


def test_no_module_imports_from_a_higher_layer():
    found = []
    for module, (path, is_package) in MODULES.items():
        found += upward_imports(module, path.read_text(encoding="utf-8"), is_package, str(path))
    assert not found, "imports from a higher layer:\n" + "\n".join(found)


def test_the_check_sees_function_level_relative_and_absolute_imports():
    source = (
        "from .dynamics import Dynamics\n"  # same layer
        "def plot():\n"
        "    from ..report import runner\n"  # a subpackage's module, two levels up
        "    import bsnn_lightning.callbacks\n"
        "    from .. import neurons, __version__\n"  # a module and a name of the facade
    )
    assert upward_imports("bsnn_lightning.engine.api", source) == [
        "bsnn_lightning.engine.api (layer 0, foundations) imports bsnn_lightning.report.runner (layer 8, report) at line 3",
        "bsnn_lightning.engine.api (layer 0, foundations) imports bsnn_lightning.callbacks (layer 6, training) at line 4",
        "bsnn_lightning.engine.api (layer 0, foundations) imports bsnn_lightning.neurons (layer 2, neurons) at line 5",
        "bsnn_lightning.engine.api (layer 0, foundations) imports bsnn_lightning (layer 7, facade) at line 5",
    ]
    # a package's __init__ resolves "." to the package itself
    assert upward_imports("bsnn_lightning.figures", "from . import common\nfrom .common import new_figure\n", True) == []
    assert upward_imports("bsnn_lightning.cli", "from .report import main\n") == []
