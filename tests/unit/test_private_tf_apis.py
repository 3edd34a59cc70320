"""The one non-public TensorFlow API the package uses, checked on its own.

``tfrecs_llm.ranking.id_rows`` subclasses ``TableInitializerBase`` (not exported by
``tf.lookup``) so that a SavedModel fills its ``id -> row`` table from the restored ids variable
instead of storing the ids as constants. If a TensorFlow upgrade moves or changes that class,
these tests fail first, with the reason in their name.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

import tfrecs_llm  # noqa: F401  (Keras 2 as tf.keras before TensorFlow loads)
from tfrecs_llm.ranking.id_rows import row_lookup_table


def test_table_initializer_base_is_still_where_id_rows_imports_it() -> None:
    from tensorflow.python.ops.lookup_ops import KeyValueTensorInitializer, TableInitializerBase

    assert issubclass(KeyValueTensorInitializer, TableInitializerBase)


class _Rows(tf.Module):
    def __init__(self, ids: list[str]) -> None:
        super().__init__()
        self.ids = tf.Variable(ids, trainable=False, dtype=tf.string)
        self.table = row_lookup_table(self.ids)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def rows(self, ids: tf.Tensor) -> tf.Tensor:
        return self.table.lookup(ids)


def test_the_table_is_filled_from_the_restored_variable_after_a_reload(tmp_path: Path) -> None:
    ids = ["item-alpha-0001", "item-beta-0002", "item-gamma-0003"]
    module = _Rows(ids)
    np.testing.assert_array_equal(module.rows(tf.constant([ids[2], ids[0], "unknown"])), [2, 0, -1])
    tf.saved_model.save(module, str(tmp_path / "rows"))
    # The ids are stored once, in the checkpoint, not as constants in the graph.
    graph = (tmp_path / "rows" / "saved_model.pb").read_bytes()
    checkpoint = b"".join(p.read_bytes() for p in (tmp_path / "rows" / "variables").glob("*.data-*"))
    assert all(i.encode() not in graph and i.encode() in checkpoint for i in ids)
    reloaded = tf.saved_model.load(str(tmp_path / "rows"))
    np.testing.assert_array_equal(reloaded.rows(tf.constant([ids[1], ids[2], ids[0], "nope"])), [1, 2, 0, -1])
