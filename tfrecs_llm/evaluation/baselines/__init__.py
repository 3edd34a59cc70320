"""Baselines scored by the same protocol as the model (``tfrecs_llm.evaluation.protocol``).

Each is a score function: held-out queries (``user_id``, ``user_text``, ``timestamp``) ->
``[num_queries, num_items]`` scores over the catalog.

- ``popularity``: training-event counts (``popularity.py``).
- ``id_only``: the TFRS basic-retrieval tutorial model over user and item ids (``id_only.py``).
- ``tfidf``: TF-IDF cosine between user text and item text (``tfidf.py``).
- ``zero_shot``: the pretrained encoder's pooled embeddings, no training (``zero_shot.py``).
"""

BASELINE_NAMES = ("popularity", "id_only", "tfidf", "zero_shot")

__all__ = ["BASELINE_NAMES"]
