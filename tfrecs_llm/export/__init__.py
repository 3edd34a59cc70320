"""SavedModel export in TF Serving's layout, and loading an export back in Python.

Submodules load lazily: ``load_export`` does not import the exporter (nor ScaNN, unless the
export needs it).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "export_tf_serving": "tfrecs_llm.export.tf_serving",
    "load_export": "tfrecs_llm.export.loaded",
    "LoadedExport": "tfrecs_llm.export.loaded",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tfrecs_llm.export' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
