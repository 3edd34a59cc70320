"""The stage's ``item id -> catalog row`` hash table, filled from a variable of ids.

This is the one place that uses a non-public TensorFlow API: ``TableInitializerBase``, the base
class of ``tf.lookup.KeyValueTensorInitializer``, which ``tf.lookup`` does not export. Public
initializers take constant tensors (written into saved_model.pb: 22 MB at 1M items, and
protobuf's 2 GB limit stops an export at tens of millions) or files (an asset per export, read
again by every TF Serving replica). ``tests/unit/test_private_tf_apis.py`` fails first if a
TensorFlow upgrade moves or changes it.
"""

from __future__ import annotations

import tensorflow as tf
from tensorflow.python.ops.lookup_ops import TableInitializerBase


class RowOfId(TableInitializerBase):
    """Fills a hash table ``id -> row`` from a string variable of ids ``[num_items]``.

    Tables are filled when created: at construction, and when a SavedModel is loaded, after its
    variables are restored (TF Serving's C++ loader runs table initializers after the restore
    too). Reading the ids from a variable keeps them in the checkpoint, once; a
    ``KeyValueTensorInitializer`` would write them as constants into saved_model.pb (22 MB at 1M
    items, and protobuf's 2 GB limit stops the export at tens of millions).
    """

    def __init__(self, ids: tf.Variable) -> None:
        super().__init__(tf.string, tf.int32)
        self._ids = ids

    def initialize(self, table: tf.lookup.StaticHashTable) -> tf.Operation:
        ids = tf.reshape(tf.convert_to_tensor(self._ids), [-1])
        rows = tf.range(tf.size(ids, out_type=tf.int32))
        return tf.raw_ops.LookupTableImportV2(table_handle=table.resource_handle, keys=ids, values=rows)


def row_lookup_table(ids: tf.Variable) -> tf.lookup.StaticHashTable:
    """``ids: [num_items]`` string variable -> a table mapping each id to its row (-1 if absent)."""
    return tf.lookup.StaticHashTable(RowOfId(ids), default_value=-1)
