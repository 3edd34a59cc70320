"""tfrecs_llm: pretrained language models in TensorFlow Recommenders.

TensorFlow Recommenders 0.7.7 needs Keras 2 (tf_keras) as ``tf.keras`` while keras-hub needs
Keras 3. Importing this package selects the legacy Keras for ``tf.keras`` before TensorFlow is
imported; keras-hub keeps using Keras 3 (``import keras``) in the same process.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

__version__ = "0.1.0"

_KERAS_HINT = (
    "tfrecs_llm needs Keras 2 (tf_keras) as tf.keras, but TensorFlow was already imported with "
    "Keras 3 as tf.keras. Import tfrecs_llm before tensorflow, or set the environment variable "
    "TF_USE_LEGACY_KERAS=1 before starting Python (in Jupyter: restart the kernel and import "
    "tfrecs_llm first)."
)


def _select_legacy_keras() -> None:
    # TensorFlow resolves ``tf.keras`` lazily from this variable, so it also works when tensorflow
    # was imported earlier but ``tf.keras`` not yet touched.
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    if "tensorflow" in sys.modules:
        import tensorflow as tf

        if not tf.keras.__name__.startswith("tf_keras"):
            raise ImportError(_KERAS_HINT)


_select_legacy_keras()

_LAZY = {
    "Config": "tfrecs_llm.config",
    "RankingConfig": "tfrecs_llm.config",
    "Recommender": "tfrecs_llm.recommender",
    "load_items": "tfrecs_llm.data.schema",
    "load_interactions": "tfrecs_llm.data.schema",
    "validate_items": "tfrecs_llm.data.schema",
    "validate_interactions": "tfrecs_llm.data.schema",
    "SchemaError": "tfrecs_llm.data.schema",
    "UserTextBuilder": "tfrecs_llm.data.user_text",
    "load_sample": "tfrecs_llm.data.sample",
    "evaluate": "tfrecs_llm.evaluation.compare",
    "EvaluationConfig": "tfrecs_llm.evaluation.compare",
    "EvaluationReport": "tfrecs_llm.evaluation.report",
    "load_export": "tfrecs_llm.export.loaded",
    "LoadedExport": "tfrecs_llm.export.loaded",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tfrecs_llm' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
