"""An LRU cache of query embeddings, so that repeated user texts skip BERT.

A loaded version keeps one cache (embeddings belong to one model version). A request on a text
signature (``serving_default``, ``recommend_with_exclusions``, ``recommend``, ``embed_query``)
embeds only the texts the cache lacks (``embed_query``), then ranks through the export's
``recommend_from_embedding`` signature, which runs the same retrieval, ranking and reasons as the
text signatures. Exports without that signature are served without the cache.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf

EMBED_SIGNATURE = "embed_query"
FROM_EMBEDDING_SIGNATURE = "recommend_from_embedding"
TEXT_SIGNATURES = ("serving_default", "recommend_with_exclusions", "recommend", EMBED_SIGNATURE)


class QueryEmbeddingCache:
    """Thread-safe LRU map of user text (bytes) -> query embedding ``[embedding_dim]`` float32."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"query cache capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def get(self, texts: list[bytes]) -> list[np.ndarray | None]:
        """The cached embedding of each text (None when absent); hits become most recent."""
        with self._lock:
            found = [self._entries.get(text) for text in texts]
            for text, embedding in zip(texts, found):
                if embedding is not None:
                    self._entries.move_to_end(text)
            self.hits += sum(e is not None for e in found)
            self.misses += sum(e is None for e in found)
            return found

    def put(self, texts: list[bytes], embeddings: np.ndarray) -> None:
        """Stores ``embeddings: [len(texts), embedding_dim]``, evicting the least recent."""
        with self._lock:
            for text, embedding in zip(texts, embeddings):
                self._entries[text] = embedding
                self._entries.move_to_end(text)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)


class CachedQueries:
    """Runs a version's text signatures through a `QueryEmbeddingCache`.

    ``signatures``: the loaded SavedModel's signature functions; `supports` tells whether they
    include what the cache needs.
    """

    def __init__(self, signatures: Mapping[str, Any], capacity: int) -> None:
        self.cache = QueryEmbeddingCache(capacity)
        self._embed = signatures[EMBED_SIGNATURE]
        self._from_embedding = signatures[FROM_EMBEDDING_SIGNATURE]

    @staticmethod
    def supports(signatures: Mapping[str, Any]) -> bool:
        return EMBED_SIGNATURE in signatures and FROM_EMBEDDING_SIGNATURE in signatures

    def embed(self, user_text: tf.Tensor) -> np.ndarray:
        """``user_text: [batch]`` -> ``[batch, embedding_dim]``, running BERT on unseen texts only
        (each distinct one once)."""
        texts = [bytes(t) for t in user_text.numpy()]
        if not texts:
            return self._embed(user_text=user_text)["embeddings"].numpy()
        found = self.cache.get(texts)
        missing = list(dict.fromkeys(t for t, e in zip(texts, found) if e is None))
        if missing:
            computed = self._embed(user_text=tf.constant(missing))["embeddings"].numpy()
            self.cache.put(missing, computed)
            fresh = dict(zip(missing, computed))
            found = [fresh[t] if e is None else e for t, e in zip(texts, found)]
        return np.stack(found)

    def run(self, signature_name: str, tensors: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """Outputs of ``signature_name`` (one of `TEXT_SIGNATURES`) on validated ``tensors``."""
        user_text = tensors["user_text"]
        embeddings = self.embed(user_text)
        if signature_name == EMBED_SIGNATURE:
            return {"embeddings": tf.constant(embeddings)}
        batch = len(embeddings)
        empty = tf.fill([batch, 0], "")
        return self._from_embedding(
            query_embedding=tf.constant(embeddings),
            user_text=user_text,
            exclude_item_ids=tensors.get("exclude_item_ids", empty),
            history_item_ids=tensors.get("history_item_ids", empty),
            diversity=tensors.get("diversity", tf.zeros([batch], tf.float32)),
        )
