"""A pretrained keras-hub BERT (Keras 3) running inside a tf_keras model.

TensorFlow Recommenders needs Keras 2 (``tf_keras``), keras-hub needs Keras 3. Both run on the
same TensorFlow: the keras-hub backbone is kept out of tf_keras's object tracking, and its
``tf.Variable`` s are tracked once, by this layer, so that optimizers see them (fine-tuning),
checkpoints restore them and ``tf.saved_model.save`` stores them exactly once.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf
import tf_keras



@dataclass(frozen=True)
class _KerasHubParts:
    """Holds Keras 3 objects where tf_keras's attribute tracking does not look."""

    backbone: Any
    tokenizer: Any
    packer: Any


class TextEncoder(tf_keras.layers.Layer):
    """Raw text -> masked mean pooling of BERT's last hidden states (sentence-transformers style).

    Call: ``texts: [batch_size]`` (or ``[batch_size, 1]``) ``tf.string`` ->
    ``[batch_size, hidden_dim]`` ``float32``, L2-normalised when ``normalize`` is set.
    Tokenization runs in the graph (TF Text ops), so a SavedModel takes raw strings. Each batch
    is trimmed to its longest text, so short texts do not pay for ``sequence_length``.

    It has no config (Keras's ``Layer.get_config`` raises ``NotImplementedError`` for its
    arguments): it holds keras-hub's Keras 3 backbone and tokenizer, which a config cannot
    carry. It is saved as weights (``tf.train.Checkpoint``, SavedModel) and rebuilt by
    ``tfrecs_llm.text.presets.load_encoder`` and ``Recommender.load``.
    """

    def __init__(
        self,
        backbone: Any,
        tokenizer: Any,
        sequence_length: int = 64,
        normalize: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        import keras_hub

        packer = keras_hub.layers.StartEndPacker(
            start_value=tokenizer.cls_token_id,
            end_value=tokenizer.sep_token_id,
            pad_value=tokenizer.pad_token_id,
            sequence_length=sequence_length,
            return_padding_mask=True,
        )
        self._parts = _KerasHubParts(backbone=backbone, tokenizer=tokenizer, packer=packer)
        self.sequence_length = sequence_length
        self.normalize = normalize
        self.hidden_dim = int(backbone.hidden_dim)
        self.bert_variables = [v.value for v in backbone.weights]
        # Mean pooling never reads BERT's [CLS] pooler; optimizers should not see it.
        self._unused = {v.value.ref() for v in backbone.get_layer("pooled_dense").weights}

    @property
    def trainable_weights(self) -> list[tf.Variable]:
        return [v for v in super().trainable_weights if v.ref() not in self._unused]

    def fine_tune_only(self, variables: list[tf.Variable]) -> None:
        """Re-tracks the backbone's variables (``enable_lora`` adds some) and shows optimizers
        only ``variables`` of them; ``tfrecs_llm.text.finetune`` picks them per mode."""
        self.bert_variables = [v.value for v in self.backbone.weights]
        keep = {v.ref() for v in variables}
        self._unused = {v.ref() for v in self.bert_variables if v.ref() not in keep}

    def dropout_seed_variables(self) -> list[tf.Variable]:
        """The backbone's dropout seed states (Keras 3 ``SeedGenerator`` s): variables that are
        not weights, which this layer does not track; a SavedModel of a function that runs
        BERT in training mode must track them itself."""
        weights = {id(v) for v in self.backbone.weights}
        return [v.value for v in self.backbone.variables if id(v) not in weights]

    @property
    def backbone(self) -> Any:
        return self._parts.backbone

    @property
    def tokenizer(self) -> Any:
        return self._parts.tokenizer

    def tokenize(self, texts: tf.Tensor, width_multiple: int = 1) -> tuple[tf.Tensor, tf.Tensor]:
        """``texts: [batch_size]`` -> (token_ids, padding_mask), both ``[batch_size, width]``.

        ``width`` is the longest text's token count, rounded up to a multiple of
        ``width_multiple`` (at most ``sequence_length``): XLA compiles one program per shape,
        so a compiled BERT wants few distinct widths.
        """
        texts = tf.reshape(tf.convert_to_tensor(texts, tf.string), [-1])
        token_ids, padding_mask = self._parts.packer(self._parts.tokenizer(texts))
        width = tf.maximum(tf.reduce_max(tf.reduce_sum(tf.cast(padding_mask, tf.int32), 1)), 2)
        if width_multiple > 1:
            width = tf.minimum(-(-width // width_multiple) * width_multiple, self.sequence_length)
        return token_ids[:, :width], padding_mask[:, :width]

    def call(self, texts: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        token_ids, padding_mask = self.tokenize(texts)
        return self.pool_tokens(token_ids, padding_mask, training=training)

    def pool_tokens(
        self, token_ids: tf.Tensor, padding_mask: tf.Tensor, training: bool | None = None
    ) -> tf.Tensor:
        """The dense part: ``token_ids, padding_mask: [batch_size, width]`` -> BERT -> masked
        mean pooling ``[batch_size, hidden_dim]``. No string ops, so XLA can compile it."""
        outputs = self._parts.backbone(
            {
                "token_ids": token_ids,
                "segment_ids": tf.zeros_like(token_ids),
                "padding_mask": padding_mask,
            },
            training=bool(training) and self.trainable,
        )
        mask = tf.cast(padding_mask, outputs["sequence_output"].dtype)[:, :, tf.newaxis]
        summed = tf.reduce_sum(outputs["sequence_output"] * mask, axis=1)
        pooled = summed / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)
        if self.normalize:
            pooled = tf.math.l2_normalize(pooled, axis=-1)
        return pooled


_INFERENCE_FUNCTIONS: "weakref.WeakKeyDictionary[TextEncoder, tuple[int, Any]]" = (
    weakref.WeakKeyDictionary()
)


def _inference_function(encoder: TextEncoder) -> Any:
    """One traced inference function per encoder: tracing BERT costs seconds, and every
    `embed_texts` call (each evaluation batch, each added item) would otherwise pay it again.
    Rebuilt when the backbone gains variables (``enable_lora``), which a trace would miss."""
    num_variables = len(encoder.backbone.weights)
    cached = _INFERENCE_FUNCTIONS.get(encoder)
    if cached is None or cached[0] != num_variables:
        owner = weakref.ref(encoder)  # the cache must not keep its key alive
        function = tf.function(lambda batch: owner()(batch, training=False), reduce_retracing=True)
        cached = _INFERENCE_FUNCTIONS[encoder] = (num_variables, function)
    return cached[1]


def embed_texts(
    encoder: TextEncoder,
    texts: list[str] | np.ndarray,
    batch_size: int = 128,
    verbose: bool = True,
    description: str = "embedding texts",
) -> np.ndarray:
    """Embeds many texts once (inference mode), with progress output.

    Returns ``[len(texts), hidden_dim]`` float32. Duplicate texts are embedded once, and texts
    are batched by length so that padding stays small.
    """
    texts = np.asarray(texts, dtype=object)
    if len(texts) == 0:
        return np.zeros((0, encoder.hidden_dim), np.float32)
    unique, inverse = np.unique(texts.astype(str), return_inverse=True)
    order = np.argsort([len(t) for t in unique], kind="stable")
    encode = _inference_function(encoder)
    result = np.zeros((len(unique), encoder.hidden_dim), np.float32)
    progress = tf_keras.utils.Progbar(len(unique), unit_name="text", verbose=1 if verbose else 0)
    if verbose:
        print(f"{description}: {len(unique)} unique of {len(texts)}")
    for start in range(0, len(unique), batch_size):
        rows = order[start : start + batch_size]
        result[rows] = encode(tf.constant(unique[rows].tolist())).numpy()
        progress.add(len(rows))
    return result[inverse]
