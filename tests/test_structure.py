"""Package structure: no import cycle, one errors module, an import-light top level (issue 10)."""
from __future__ import annotations

import ast
import importlib
import inspect
import json
import subprocess
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

import gridconv_core
from gridconv_core import errors

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("gridconv_core", "gridviz")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Our modules that ``name`` imports anywhere in its source (function-level imports included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # ``import a.b.c`` needs ``a.b.c``; a name of ``a.b`` needs ``a.b``
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _dependency_order() -> list[str]:
    modules = _modules()
    graph = {name: _imports(name, path, set(modules)) for name, path in modules.items()}
    return list(TopologicalSorter(graph).static_order())


def test_no_import_cycle() -> None:
    """Every module of gridconv_core and gridviz, ordered by its imports (lazy ones too), imports in a fresh
    interpreter in that order; an import cycle makes the order impossible."""
    try:
        order = _dependency_order()
    except CycleError as err:
        pytest.fail(f"import cycle: {' -> '.join(err.args[1])}")
    assert order.index("gridconv_core.errors") < order.index("gridconv_core.skeleton") < order.index("gridconv_core.sgt")
    script = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    done = subprocess.run([sys.executable, "-c", script, *order], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_gridconv_core_never_imports_gridviz() -> None:
    modules = _modules()
    for name, path in modules.items():
        if name.startswith("gridconv_core"):
            assert not any(dep.startswith("gridviz") for dep in _imports(name, path, set(modules))), name


def test_errors_module_is_the_ground_floor() -> None:
    modules = _modules()
    assert _imports("gridconv_core.errors", modules["gridconv_core.errors"], set(modules)) == set()


def test_every_public_error_is_defined_in_errors() -> None:
    """Every exception class a gridconv_core module exposes (``__all__`` or a public attribute) is the one
    defined in ``gridconv_core.errors``; the top level re-exports the contract's classes."""
    for name in _modules():
        if not name.startswith("gridconv_core"):
            continue
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            if attr.startswith("_") or not (inspect.isclass(value) and issubclass(value, Exception)):
                continue
            if value.__module__.startswith("gridconv_core"):
                assert value.__module__ == "gridconv_core.errors", f"{name}.{attr} is defined in {value.__module__}"
    defined = {n for n, v in vars(errors).items() if inspect.isclass(v) and issubclass(v, Exception)
               and v.__module__ == "gridconv_core.errors"}
    assert defined == set(errors.__all__) - {"check_pose_input"}
    for cls in (getattr(errors, n) for n in defined):
        assert issubclass(cls, ValueError) and not issubclass(cls, KeyError), cls
    for contract in ("LayoutError", "SkeletonError", "ConfigError", "InputError", "DataError", "CheckpointError",
                     "EvalError"):
        assert getattr(gridconv_core, contract) is getattr(errors, contract)


def test_import_gridconv_core_defers_the_heavy_parts() -> None:
    """``import gridconv_core`` loads neither the trainer, tqdm, our DDP module nor the data loaders; every name
    of ``__all__`` still resolves (PEP 562)."""
    probe = ("import json, gridconv_core\n"
             "print(json.dumps({'missing': [n for n in gridconv_core.__all__ if getattr(gridconv_core, n, None) is None],"
             " 'undir': sorted(set(gridconv_core.__all__) - set(dir(gridconv_core)))}))\n")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.splitlines()[-1]) == {"missing": [], "undir": []}
    fresh = subprocess.run([sys.executable, "-c", "import sys, gridconv_core; print(' '.join(sorted(sys.modules)))"],
                           cwd=ROOT, capture_output=True, text=True)
    loaded = set(fresh.stdout.split())
    for heavy in ("gridconv_core.train", "gridconv_core.train.trainer", "gridconv_core.train.distributed",
                  "gridconv_core.data", "gridconv_core.evaluate", "gridconv_core.baselines", "tqdm", "networkx"):
        assert heavy not in loaded, f"import gridconv_core loaded {heavy}"
