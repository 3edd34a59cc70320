"""Tokenizing user texts in the tf.data pipeline, for the fine-tuning modes."""

from __future__ import annotations

import tensorflow as tf

from tfrecs_llm.text.encoder import TextEncoder


def tokenize_in_pipeline(dataset: tf.data.Dataset, encoder: TextEncoder) -> tf.data.Dataset:
    """Tokenizes each batch's ``user_text: [batch_size]`` in parallel tf.data workers, prefetched.

    Adds ``user_token_ids`` and ``user_padding_mask`` (``[batch_size, width]``), which the query
    tower feeds straight to BERT, so a fine-tuning step does not wait for the string ops. On CPU
    tokenizing is a small share of a step; on a GPU, where the step itself is short, it is not.
    """

    def add_tokens(features: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        token_ids, padding_mask = encoder.tokenize(features["user_text"])
        return {**features, "user_token_ids": token_ids, "user_padding_mask": padding_mask}

    return dataset.map(add_tokens, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
