"""Load a helper script of ``models/recipes/`` (not a package: the recipes run them by path) as a module."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

RECIPES = Path(__file__).resolve().parents[2] / "models" / "recipes"


def load_recipe(file_name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(Path(file_name).stem, RECIPES / file_name)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module
