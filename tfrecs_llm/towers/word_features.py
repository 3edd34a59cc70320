"""Learned, hashed word and bigram embeddings of a text (the "wide" part of the query tower).

A frozen BERT summarises a user text into one mean-pooled vector; which exact titles the text
names is blurred in that average. Hashed n-gram embeddings keep it: "star wars" and
"wars 1977" get their own trained vectors, the way item ids do in the item tower. They need no
vocabulary file (the hash is the vocabulary), run in the graph on raw strings, and so serve from
the same SavedModel input as BERT.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf
import tf_keras

_PUNCTUATION = r"[!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]"


class HashedWordEmbedding(tf_keras.layers.Layer):
    """``texts: [batch_size] string`` -> ``[batch_size, output_dim]``: the sqrt(n)-scaled sum of
    the embeddings of the text's lowercased words and word n-grams (up to ``max_ngram``), each
    hashed into ``num_buckets`` rows. An empty text maps to zeros.
    """

    def __init__(self, num_buckets: int, output_dim: int, max_ngram: int = 2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if num_buckets < 1:
            raise ValueError(f"num_buckets must be >= 1, got {num_buckets}")
        self.num_buckets = num_buckets
        self.output_dim = output_dim
        self.max_ngram = max_ngram
        self.embedding = tf_keras.layers.Embedding(
            num_buckets,
            output_dim,
            embeddings_initializer=tf_keras.initializers.RandomNormal(stddev=0.01),
            name="hashed_word_embedding",
        )

    def tokens(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """``[batch_size]`` strings -> ragged ``[batch_size, None]`` words and n-grams."""
        texts = tf.strings.lower(tf.reshape(tf.convert_to_tensor(texts, tf.string), [-1]))
        words = tf.strings.split(tf.strings.regex_replace(texts, _PUNCTUATION, " "))
        grams = [words] + [
            tf.strings.ngrams(words, n, separator=" ") for n in range(2, self.max_ngram + 1)
        ]
        return tf.concat(grams, axis=1)

    def call(self, texts: tf.Tensor) -> tf.Tensor:
        tokens = self.tokens(texts)
        ids = tf.strings.to_hash_bucket_fast(tokens, self.num_buckets)
        summed = tf.reduce_sum(self.embedding(ids), axis=1)
        count = tf.cast(tokens.row_lengths(), summed.dtype)[:, tf.newaxis]
        return summed / tf.sqrt(tf.maximum(count, 1.0))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(num_buckets=self.num_buckets, output_dim=self.output_dim, max_ngram=self.max_ngram)
        return config
