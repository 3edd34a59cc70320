"""The Keras 2/3 bridge: BERT (keras-hub, Keras 3) trains inside a tf_keras model."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from tests.conftest import make_tiny_encoder, save_tiny_preset
from tfrecs_llm.towers import QueryTower


def _one_step(trainable: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """One SGD step (learning rate 1) through the tower: BERT's word embeddings before and
    after, and their gradient (None when the tower does not train them)."""
    encoder = make_tiny_encoder()
    encoder.trainable = trainable
    tower = QueryTower(encoder, embedding_dim=8)
    texts = tf.constant(["space rocket planet", "pasta sauce cooking", "jazz music history"])
    tower({"user_text": texts})
    word_embedding = encoder.backbone.token_embedding.embeddings.value
    before = word_embedding.numpy().copy()
    optimizer = tf_keras.optimizers.SGD(1.0)
    with tf.GradientTape() as tape:
        embeddings = tower({"user_text": texts}, training=True)
        loss = tf.reduce_sum(embeddings[:, 0])
    grads = tape.gradient(loss, tower.trainable_variables)
    optimizer.apply_gradients(zip(grads, tower.trainable_variables))
    gradient = None
    for variable, grad in zip(tower.trainable_variables, grads):
        if variable is word_embedding:
            gradient = tf.convert_to_tensor(grad).numpy()
    return before, word_embedding.numpy(), gradient


def test_fine_tuning_updates_bert_weights_by_their_gradient() -> None:
    before, after, gradient = _one_step(trainable=True)
    assert gradient is not None and np.abs(gradient).max() > 1e-6
    np.testing.assert_allclose(after, before - gradient, atol=1e-6)


def test_frozen_bert_weights_stay_put() -> None:
    before, after, gradient = _one_step(trainable=False)
    assert gradient is None
    np.testing.assert_array_equal(before, after)


def test_trainable_weights_expose_bert_only_when_fine_tuning(tiny_encoder) -> None:
    tiny_encoder.trainable = True
    pooler = {id(v.value) for v in tiny_encoder.backbone.get_layer("pooled_dense").weights}
    bert = {id(v.value) for v in tiny_encoder.backbone.trainable_weights}
    assert {id(v) for v in tiny_encoder.trainable_weights} == bert - pooler
    tiny_encoder.trainable = False
    assert tiny_encoder.trainable_weights == []
    assert len(tiny_encoder.non_trainable_weights) == len(bert)


def test_padding_does_not_change_embeddings(tiny_encoder) -> None:
    alone = tiny_encoder(tf.constant(["space rocket"])).numpy()
    batched = tiny_encoder(tf.constant(["space rocket", "a much longer text about jazz music history"])).numpy()
    np.testing.assert_allclose(alone[0], batched[0], atol=1e-5)


def _clean_env() -> dict[str, str]:
    # This process set TF_USE_LEGACY_KERAS when it imported tfrecs_llm; a user's shell has not.
    return {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}


def test_import_after_keras3_tf_keras_raises_clear_error() -> None:
    code = "import tensorflow as tf; tf.keras.layers; import tfrecs_llm"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_clean_env())
    assert result.returncode != 0
    assert "ImportError" in result.stderr and "TF_USE_LEGACY_KERAS=1" in result.stderr


def test_import_selects_legacy_keras() -> None:
    code = "import tfrecs_llm, tensorflow as tf; print(tf.keras.__name__)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_clean_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("tf_keras")


def test_sequence_length_beyond_the_checkpoint_is_refused_naming_the_field(tmp_path) -> None:
    from tfrecs_llm.config import EncoderConfig
    from tfrecs_llm.text.presets import load_encoder

    preset = save_tiny_preset(tmp_path / "tiny_bert", sequence_length=32)
    with pytest.raises(ValueError, match="encoder.sequence_length is 64 .* 32 tokens"):
        load_encoder(EncoderConfig(preset=str(preset), sequence_length=64))


def test_embed_texts_traces_bert_once_per_encoder(tiny_encoder) -> None:
    from tfrecs_llm.text.encoder import _inference_function, embed_texts

    first = embed_texts(tiny_encoder, ["space rocket", "jazz"], verbose=False)
    function = _inference_function(tiny_encoder)
    again = embed_texts(tiny_encoder, ["jazz", "space rocket"], verbose=False)
    assert _inference_function(tiny_encoder) is function
    np.testing.assert_allclose(again, first[::-1], atol=1e-6)
    tiny_encoder.backbone.enable_lora(2)
    assert _inference_function(tiny_encoder) is not function
