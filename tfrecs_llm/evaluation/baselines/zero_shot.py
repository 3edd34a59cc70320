"""Zero-shot baseline: the pretrained text encoder as it is, no training.

    score(u, i) = cos(pool(BERT(user_text_u)), pool(BERT(item_text_i)))

with ``pool`` the masked mean pooling of :class:`tfrecs_llm.text.encoder.TextEncoder` (the
sentence-transformers embedding of all-MiniLM-L6-v2). Its item embeddings are also the common
space in which the evaluation measures every model's intra-list diversity.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import pandas as pd

from tfrecs_llm.text.encoder import TextEncoder, embed_texts
from tfrecs_llm.types import EmbedTexts

"""``[n]`` texts -> ``[n, hidden_dim]`` pooled embeddings (not necessarily unit-norm)."""


def unit_rows(embeddings: np.ndarray) -> np.ndarray:
    """``[n, d]`` rows scaled to unit L2 norm (all-zero rows stay zero)."""
    embeddings = np.asarray(embeddings, dtype=np.float32)
    return embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)


class ZeroShotScorer:
    """Queries ``[n]`` rows (``user_text``) -> ``[n, num_items]`` cosine similarities.

    Args:
      item_embeddings: ``[num_items, hidden_dim]`` pooled embeddings of the item texts.
      embed_user_texts: the same encoder's pooled embeddings of user texts.
    """

    def __init__(self, item_embeddings: np.ndarray, embed_user_texts: EmbedTexts) -> None:
        self.item_embeddings = unit_rows(item_embeddings)
        self.embed_user_texts = embed_user_texts

    @classmethod
    def from_encoder(
        cls, encoder: TextEncoder, item_texts: Sequence[str], verbose: bool = False
    ) -> "ZeroShotScorer":
        """Embeds ``item_texts`` (catalog order) with ``encoder``; user texts are embedded when
        scored."""
        items = embed_texts(encoder, list(item_texts), verbose=verbose, description="embedding item texts")
        return cls(items, lambda texts: embed_texts(encoder, texts, verbose=False))

    def __call__(self, queries: pd.DataFrame) -> np.ndarray:
        users = unit_rows(self.embed_user_texts(queries["user_text"].astype(str).tolist()))
        return users @ self.item_embeddings.T
