"""Loads the worked examples under docs/examples/ (not an installed package) for the tests."""

from __future__ import annotations

import importlib.util
import os
import sys
from types import ModuleType

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_example(name: str) -> ModuleType:
    """docs/examples/<name>.py as a module (registered so its dataclasses resolve)."""
    module_name = f"mbjax_docs_example_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    path = os.path.join(ROOT, "docs", "examples", f"{name}.py")
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
