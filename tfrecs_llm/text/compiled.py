"""BERT inference compiled with XLA, for exported SavedModels.

Tokenization (TF Text ops) cannot be compiled, so it stays in the ordinary graph; the dense part
(`TextEncoder.pool_tokens`: BERT + masked mean pooling) runs as one XLA program. XLA fuses
BERT's elementwise ops (layer norms, GELU, softmax, bias adds) into the matrix products' loops,
so intermediates such as ``[batch, width, 1536]`` no longer round-trip through memory: about
1.3x faster than the plain graph on a 2-core CPU, for one query and for batches (see
benchmarks/query_latency.py). What remains is the matrix products and reading BERT's 42 MB of
weights, which no compiler removes.

XLA compiles one program per input shape (seconds each for MiniLM), so shapes are bucketed:
widths are rounded up to a multiple of ``width_multiple`` and batches are padded to a power of
two up to ``chunk_size``, larger ones to a multiple of ``chunk_size`` and encoded in chunks. A
model then needs at most ``log2(chunk_size) + 1`` programs per width bucket, whatever the batch.

CPU TF Serving only runs XLA programs when started with ``--xla_cpu_compilation_enabled=true``
(it refuses them otherwise); GPU TF Serving and TensorFlow in Python always do.
"""

from __future__ import annotations

import tensorflow as tf

from tfrecs_llm.text.encoder import TextEncoder

CHUNK_SIZE = 16
"""Rows per compiled program: 16 x 32 tokens already keeps CPU matrix units busy."""
WIDTH_MULTIPLE = 16


def padded_batch_size(batch_size: tf.Tensor, chunk_size: int = CHUNK_SIZE) -> tf.Tensor:
    """The next power of two up to ``chunk_size``, else the next multiple of ``chunk_size``."""
    batch_size = tf.maximum(tf.convert_to_tensor(batch_size, tf.int32), 1)
    powers = tf.bitwise.left_shift(1, tf.range(chunk_size.bit_length()))  # 1, 2, 4, ..., chunk_size
    power_of_two = tf.gather(powers, tf.argmax(powers >= batch_size, output_type=tf.int32))
    multiple = -(-batch_size // chunk_size) * chunk_size
    return tf.where(batch_size <= chunk_size, power_of_two, multiple)


def compiled_batch_sizes(chunk_size: int = CHUNK_SIZE) -> tuple[int, ...]:
    """The batch sizes XLA compiles a program for: 1, 2, 4, ..., ``chunk_size``."""
    return tuple(2**i for i in range(chunk_size.bit_length()))


class CompiledEncoder(tf.Module):
    """``texts: [batch_size] string`` -> ``[batch_size, hidden_dim]``, as ``encoder(texts,
    training=False)`` but with BERT compiled by XLA (inference only: training keeps calling the
    encoder, whose gradients reach BERT as before).

    Padding rows and padding tokens are masked, so every row's embedding is the plain path's up
    to float rounding.
    """

    def __init__(
        self, encoder: TextEncoder, chunk_size: int = CHUNK_SIZE, width_multiple: int = WIDTH_MULTIPLE
    ) -> None:
        super().__init__()
        if chunk_size < 1 or chunk_size & (chunk_size - 1):
            raise ValueError(f"chunk_size must be a power of two >= 1, got {chunk_size}")
        if width_multiple < 1:
            raise ValueError(f"width_multiple must be >= 1, got {width_multiple}")
        self.encoder = encoder
        self.chunk_size = chunk_size
        self.width_multiple = width_multiple
        self._pool_chunk = tf.function(self._pool, jit_compile=True)

    def _pool(self, token_ids: tf.Tensor, padding_mask: tf.Tensor) -> tf.Tensor:
        return self.encoder.pool_tokens(token_ids, padding_mask, training=False)

    def __call__(self, texts: tf.Tensor) -> tf.Tensor:
        token_ids, padding_mask = self.encoder.tokenize(texts, self.width_multiple)
        batch_size, width = tf.shape(token_ids)[0], tf.shape(token_ids)[1]
        padded = padded_batch_size(batch_size, self.chunk_size)
        rows = tf.minimum(padded, self.chunk_size)
        extra = [[0, padded - batch_size], [0, 0]]
        pad_id = self.encoder.tokenizer.pad_token_id
        chunks = (
            tf.reshape(tf.pad(token_ids, extra, constant_values=pad_id), [-1, rows, width]),
            tf.reshape(tf.pad(padding_mask, extra), [-1, rows, width]),
        )
        dtype = tf.as_dtype(self.encoder.backbone.compute_dtype)
        pooled = tf.map_fn(
            lambda chunk: self._pool_chunk(*chunk),
            chunks,
            fn_output_signature=tf.TensorSpec([None, self.encoder.hidden_dim], dtype),
            # One chunk at a time: each already uses every core.
            parallel_iterations=1,
        )
        return tf.reshape(pooled, [-1, self.encoder.hidden_dim])[:batch_size]
