"""encoder.query_layers: the query tower runs the checkpoint's first N layers, items the full
encoder; the cut copy equals the checkpoint's own first N layers, and the whole model (train,
save/load, add_items, export) keeps items in the full encoder's space."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import make_tiny_encoder, save_tiny_preset
from tests.unit.tiny_data import tiny_interactions, tiny_items
from tfrecs_llm.config import Config, EncoderConfig
from tfrecs_llm.recommender import Recommender
from tfrecs_llm.text.encoder import embed_texts
from tfrecs_llm.text.shallow import query_encoder

TEXTS = ["space rockets and planets", "pasta sauce for the garden party", "jazz music history"]


def _first_layers_by_hand(encoder, texts: list[str], layers: int) -> np.ndarray:
    """Masked mean of the hidden states after ``layers`` transformer layers of the full backbone."""
    backbone = encoder.backbone
    token_ids, mask = encoder.tokenize(tf.constant(texts))
    x = backbone.get_layer("token_embedding")(token_ids)
    x = x + backbone.get_layer("position_embedding")(x) + backbone.get_layer("segment_embedding")(tf.zeros_like(token_ids))
    x = backbone.get_layer("embeddings_layer_norm")(x)
    for i in range(layers):
        x = backbone.get_layer(f"transformer_layer_{i}")(x, padding_mask=mask)
    weights = tf.cast(mask, x.dtype)[:, :, None]
    return (tf.reduce_sum(x * weights, 1) / tf.reduce_sum(weights, 1)).numpy()


def test_the_cut_encoder_is_the_checkpoints_first_layers() -> None:
    full = make_tiny_encoder()
    cut = query_encoder(full, EncoderConfig(query_layers=1))
    assert cut is not full and int(cut.backbone.num_layers) == 1 and int(full.backbone.num_layers) == 2
    np.testing.assert_allclose(embed_texts(cut, TEXTS), _first_layers_by_hand(full, TEXTS, 1), atol=1e-5)
    assert not np.allclose(embed_texts(cut, TEXTS), embed_texts(full, TEXTS), atol=1e-3)
    assert query_encoder(full, EncoderConfig(query_layers=0)) is full
    assert query_encoder(full, EncoderConfig(query_layers=2)) is full


def test_more_layers_than_the_checkpoint_has_is_refused() -> None:
    with pytest.raises(ValueError, match="encoder.query_layers is 3 but the checkpoint .* has 2 transformer layers; use 1..2"):
        query_encoder(make_tiny_encoder(), EncoderConfig(query_layers=3))
    with pytest.raises(ValueError, match="encoder.query_layers must be an integer >= 0"):
        Config().with_overrides({"encoder.query_layers": -1})


def test_a_model_with_a_shallow_query_tower_keeps_items_in_the_full_encoders_space(tmp_path) -> None:
    preset = save_tiny_preset(tmp_path / "tiny_bert")
    config = Config().with_overrides({"train.epochs": 2, "train.batch_size": 32, "encoder.sequence_length": 32,
                                      "encoder.query_layers": 1, "encoder.preset": str(preset)})
    full = make_tiny_encoder()  # the same weights as the preset
    items = tiny_items(per_topic=30)
    model = Recommender.train(items, tiny_interactions(), config, verbose=False)
    assert int(model.encoder.backbone.num_layers) == 1
    np.testing.assert_allclose(model.catalog.text_embeddings[:3], embed_texts(full, model.catalog.texts[:3]), atol=1e-5)
    before = model.recommend(TEXTS, k=5)
    loaded = Recommender.load(model.save(tmp_path / "model"))
    assert int(loaded.encoder.backbone.num_layers) == 1
    assert loaded.recommend(TEXTS, k=5) == before
    # A new item is embedded by the full encoder, as the catalog was.
    new = items.iloc[:1].assign(item_id="fresh-1", title="rocket garden", description="planet flower")
    grown = loaded.add_items(new)
    np.testing.assert_allclose(grown.catalog.text_embeddings[-1], embed_texts(full, grown.catalog.texts[-1:])[0], atol=1e-5)
    # The export answers like the model, and offers no embed_items (it would use the shallow encoder).
    export = tf.saved_model.load(str(loaded.export(tmp_path / "exports", "tiny", index_kind="brute_force", k=5)))
    assert "embed_items" not in export.signatures
    served = export.signatures["serving_default"](user_text=tf.constant(TEXTS))["item_ids"].numpy()
    assert [[i.decode() for i in row] for row in served] == [[item for item, _ in recs] for recs in before]
