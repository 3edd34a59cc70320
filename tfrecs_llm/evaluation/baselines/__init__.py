"""Baselines scored by the same protocol as the model (``tfrecs_llm.evaluation.protocol``).

Each is a score function: held-out queries (``user_id``, ``user_text``, ``timestamp``) ->
``[num_queries, num_items]`` scores over the catalog.

- ``popularity``: training-event counts (``popularity.py``).
- ``id_only``: the TFRS basic-retrieval tutorial model over user and item ids (``id_only.py``).
- ``tfidf``: TF-IDF cosine between user text and item text (``tfidf.py``).
- ``zero_shot``: the pretrained encoder's pooled embeddings, no training (``zero_shot.py``).
- ``ease``: EASE, the closed-form item-item model (``ease.py``), lambda tuned on validation.
- ``item_knn``: cosine item-item neighbours (``item_knn.py``), k tuned on validation.
- ``sasrec``: SASRec, self-attention over the id sequence (``sasrec.py``), epochs tuned on
  validation.

``histories.py`` holds what the last three share: users' sequences and the validation split.
"""

BASELINE_NAMES = ("popularity", "id_only", "tfidf", "zero_shot", "ease", "item_knn", "sasrec")
DEFAULT_BASELINES = ("popularity", "id_only", "tfidf", "zero_shot", "ease", "item_knn")
"""What ``tfrecs_llm.evaluate`` compares with unless told: every baseline but SASRec, which
trains for minutes (ask for it by name)."""

__all__ = ["BASELINE_NAMES", "DEFAULT_BASELINES"]
