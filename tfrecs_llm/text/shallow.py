"""A shallower query encoder: the first N transformer layers of the pretrained checkpoint.

Asymmetric towers: item descriptions are embedded once, offline, by the full encoder; the query
tower runs on every request, so it may use fewer layers (``encoder.query_layers``). The copy
shares the tokenizer and takes the checkpoint's embeddings and first N layers' weights; the
two-tower heads learn to map its pooled output next to the full encoder's item embeddings.
"""

from __future__ import annotations

from tfrecs_llm.config import EncoderConfig
from tfrecs_llm.text.encoder import TextEncoder


def checkpoint_layers(encoder: TextEncoder) -> int:
    """How many transformer layers the encoder's backbone has."""
    return int(encoder.backbone.num_layers)


def query_encoder(encoder: TextEncoder, config: EncoderConfig) -> TextEncoder:
    """The query tower's encoder: ``encoder`` itself when ``config.query_layers`` is 0 (all) or
    the checkpoint's depth, else a new encoder of its first ``query_layers`` layers.

    Raises:
        ValueError: ``query_layers`` exceeds the checkpoint's depth (the message names both).
    """
    depth = checkpoint_layers(encoder)
    wanted = config.query_layers
    if wanted > depth:
        raise ValueError(
            f"encoder.query_layers is {wanted} but the checkpoint {config.preset!r} has {depth} transformer "
            f"layers; use 1..{depth} (or 0 for all)"
        )
    if wanted in (0, depth):
        return encoder
    import keras_hub

    full = encoder.backbone
    backbone_config = {**full.get_config(), "num_layers": wanted}
    backbone = keras_hub.models.BertBackbone.from_config(backbone_config)
    for layer in backbone.layers:
        if layer.weights:
            layer.set_weights(full.get_layer(layer.name).get_weights())
    return TextEncoder(backbone, encoder.tokenizer, sequence_length=encoder.sequence_length,
                       normalize=encoder.normalize)
