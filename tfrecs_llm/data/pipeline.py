"""pandas / NumPy feature columns -> tf.data pipelines."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import tensorflow as tf


def make_dataset(
    features: Mapping[str, np.ndarray],
    batch_size: int,
    shuffle: bool = True,
    seed: int = 42,
    shuffle_buffer: int = 10000,
) -> tf.data.Dataset:
    """A batched, prefetched ``tf.data.Dataset`` of feature dicts.

    ``features`` maps names to equally long arrays (``[num_examples, ...]``); each element of
    the result is a dict of ``[batch_size, ...]`` tensors. Shuffling reshuffles every epoch with
    a fixed seed, so runs are repeatable.
    """
    lengths = {name: len(values) for name, values in features.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"feature columns have different lengths: {lengths}")
    dataset = tf.data.Dataset.from_tensor_slices(dict(features))
    if shuffle:
        buffer = min(shuffle_buffer, max(lengths.values(), default=1))
        dataset = dataset.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
