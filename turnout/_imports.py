"""`package.module:attribute` specs, as the CLI takes them for schemas and graphs."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any


def import_object(spec: str) -> Any:
    """The object `spec` names, importing from the working directory too.

    Raises ValueError when `spec` is malformed, ImportError when it cannot be loaded.
    """
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"{spec!r} must look like package.module:attribute")
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ImportError(f"cannot import module {module_name!r}: {exc}") from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ImportError(f"module {module_name!r} has no attribute {attribute!r}") from None
