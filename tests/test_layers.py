"""The house plan covers the whole house: every module of portal/ (and the harvest and licenses
packages) sits in one layer of the import-linter contract (pyproject.toml), so a module added
later cannot escape the direction of dependencies. `lint-imports` (tests/run.sh) checks the
imports themselves."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _layered() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    [layers] = [c["layers"] for c in config["contracts"] if c["type"] == "layers"]
    return {name.strip() for layer in layers for name in re.split(r"[:|]", layer)}


def _modules() -> set[str]:
    found = {"harvest", "licenses"}
    for path in (ROOT / "portal").iterdir():
        if path.name in ("__init__.py", "__pycache__", "migrations", "translations"):
            continue
        if path.suffix == ".py" or (path.is_dir() and (path / "__init__.py").exists()):
            found.add(f"portal.{path.stem}")
    return found


def test_every_module_is_in_a_layer():
    assert sorted(_modules() - _layered()) == []


def test_the_layers_name_only_modules_that_exist():
    assert sorted(_layered() - _modules()) == []


def _imports_of_tests() -> dict[str, list[str]]:
    """tests module -> the modules of tests/ it imports."""
    import ast

    found = {}
    for path in sorted((ROOT / "tests").rglob("*.py")):
        names = []
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tests"):
                names.append(node.module)
            elif isinstance(node, ast.Import):
                names += [a.name for a in node.names if a.name.startswith("tests")]
        found[path.relative_to(ROOT).as_posix()] = names
    return found


def test_no_test_module_imports_another_or_a_conftest():
    """Shared helpers live in tests/helpers.py, rows in tests/factories.py, fixtures in conftest.py
    (CONTRIBUTING.md): a test module importing another's helpers runs that module's tests'
    imports too, and a move breaks tests that are not about it."""

    def forbidden(module: str) -> bool:
        last = module.rsplit(".", 1)[-1]
        return last.startswith("test_") or last == "conftest"

    assert {
        path: [m for m in modules if forbidden(m)]
        for path, modules in _imports_of_tests().items()
        if any(forbidden(m) for m in modules)
    } == {}


def test_the_portal_converts_with_the_row_groups_the_converter_was_measured_with():
    """A setting once said 56 MiB while the converter's measured default was 40 MiB: the portal
    ran with the value nobody had measured."""
    from harvest.convert import DEFAULT_ROW_GROUP_BYTES
    from portal.config import Settings

    assert Settings().parquet_row_group_bytes == DEFAULT_ROW_GROUP_BYTES
