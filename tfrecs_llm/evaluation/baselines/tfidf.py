"""TF-IDF baseline: cosine similarity between a user's text and each item's text, no training.

Words are Keras ``TextVectorization``'s (lower-cased, punctuation stripped, split on
whitespace); the vocabulary and inverse document frequencies come from the item texts:

    w(t, d) = count(t, d) * log(1 + num_items / (1 + df(t)))
    score(u, i) = cos(w(., user_text_u), w(., item_text_i))

Words that no item uses carry no signal and are dropped from user texts.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import tensorflow as tf
import tf_keras

_MAX_DENSE_CELLS = 1 << 22


class TfIdfScorer:
    """Queries ``[n]`` rows (``user_text``) -> ``[n, num_items]`` cosine similarities in [0, 1].

    Args:
      item_texts: ``[num_items]`` texts in catalog order (``title. description``).
    """

    def __init__(self, item_texts: Sequence[str]) -> None:
        if len(item_texts) == 0:
            raise ValueError("item_texts is empty; the TF-IDF baseline needs a catalog")
        texts = tf.constant([str(t) for t in item_texts])
        self.vectorizer = tf_keras.layers.TextVectorization(output_mode="tf_idf", sparse=True)
        self.vectorizer.adapt(tf.data.Dataset.from_tensor_slices(texts).batch(4096))
        items = self.vectorizer(texts)  # SparseTensor [num_items, vocabulary_size]
        rows = items.indices[:, 0]
        norms = tf.sqrt(tf.math.unsorted_segment_sum(tf.square(items.values), rows, len(item_texts)))
        self.item_vectors = tf.SparseTensor(
            items.indices, items.values / tf.gather(tf.maximum(norms, 1e-12), rows), items.dense_shape
        )

    def __call__(self, queries: pd.DataFrame) -> np.ndarray:
        texts = queries["user_text"].astype(str).tolist()
        # Dense user vectors are [n, vocabulary_size]: a few at a time on large vocabularies.
        step = max(1, _MAX_DENSE_CELLS // int(self.item_vectors.dense_shape[1]))
        parts = [self._scores(texts[start : start + step]) for start in range(0, len(texts), step)]
        return np.concatenate(parts) if parts else np.zeros((0, int(self.item_vectors.dense_shape[0])))

    def _scores(self, texts: list[str]) -> np.ndarray:
        users = tf.sparse.to_dense(self.vectorizer(tf.constant(texts)))  # [n, vocabulary_size]
        users = tf.concat([tf.zeros_like(users[:, :1]), users[:, 1:]], axis=1)  # column 0: unknown words
        users = tf.math.l2_normalize(users, axis=1)
        return tf.sparse.sparse_dense_matmul(self.item_vectors, users, adjoint_b=True).numpy().T
