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
