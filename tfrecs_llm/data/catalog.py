"""The item table a model knows, in a fixed row order, with its cached description embeddings."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tfrecs_llm.data.item_text import item_texts
from tfrecs_llm.types import EmbedTexts


@dataclass
class Catalog:
    """The items a model knows, in a fixed row order.

    ``items``: the validated items table (``tfrecs_llm.data.schema.validate_items``);
    ``item_ids: [num_items]`` strings; ``texts``: ``title. description`` per item;
    ``text_embeddings: [num_items, hidden_dim]`` pretrained-encoder output (``None`` for the
    bag-of-words item encoder); ``id_vocabulary``: the ids the item-id embedding is trained on,
    the items with training events (items without any, and items added later, map to the OOV
    bucket and embed from their text).

    Example::

        catalog = Catalog.build(validate_items(items))   # no cached embeddings
        catalog.rows_of(["i0002", "unknown"])            # array([1., nan])
    """

    items: pd.DataFrame
    item_ids: np.ndarray
    texts: list[str]
    text_embeddings: np.ndarray | None
    id_vocabulary: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.id_vocabulary is None:
            self.id_vocabulary = self.item_ids

    @classmethod
    def build(cls, items: pd.DataFrame, embed: EmbedTexts | None = None) -> "Catalog":
        """A catalog over the validated ``items``; ``embed`` (texts ``[n]`` -> ``[n, hidden_dim]``)
        caches the description embeddings, ``None`` leaves them out (bag-of-words items)."""
        items = items.reset_index(drop=True)
        texts = item_texts(items)
        embeddings = None if embed is None else np.asarray(embed(texts), np.float32)
        return cls(items, items["item_id"].to_numpy(dtype=str), texts, embeddings)

    def extended(self, new_items: pd.DataFrame, new_embeddings: np.ndarray | None) -> "Catalog":
        """This catalog plus ``new_items`` (validated, ids new) after its rows, same id vocabulary.

        ``new_embeddings: [len(new_items), hidden_dim]`` when this catalog caches embeddings.
        """
        embeddings = None
        if self.text_embeddings is not None:
            if new_embeddings is None or new_embeddings.shape[1:] != self.text_embeddings.shape[1:]:
                shape = None if new_embeddings is None else new_embeddings.shape
                raise ValueError(
                    f"the new items' text embeddings have shape {shape}, but the catalog's are "
                    f"[num_items, {self.text_embeddings.shape[1]}]; embed them with the encoder "
                    "that embedded the catalog"
                )
            embeddings = np.concatenate([self.text_embeddings, new_embeddings])
        items = pd.concat([self.items, new_items], ignore_index=True)
        return Catalog(
            items=items,
            item_ids=items["item_id"].to_numpy(dtype=str),
            texts=[*self.texts, *item_texts(new_items)],
            text_embeddings=embeddings,
            id_vocabulary=self.id_vocabulary,
        )

    def features(self, rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Item-tower features for ``rows`` (all items when ``None``)."""
        rows = np.arange(len(self.item_ids)) if rows is None else rows
        features: dict[str, np.ndarray] = {"item_id": self.item_ids[rows]}
        if self.text_embeddings is not None:
            features["item_text_embedding"] = self.text_embeddings[rows]
        else:
            features["item_text"] = np.asarray(self.texts, dtype=object)[rows].astype(str)
        return features

    def vocabulary_texts(self) -> list[str]:
        """Texts of the items in ``id_vocabulary`` (the items the model was trained with)."""
        known = np.isin(self.item_ids, self.id_vocabulary)
        return [text for text, keep in zip(self.texts, known) if keep]

    def row_index(self) -> pd.Series:
        """item id -> catalog row."""
        return pd.Series(np.arange(len(self.item_ids)), index=self.item_ids)

    def rows_of(self, item_ids: pd.Series | np.ndarray) -> np.ndarray:
        """Catalog rows of ``item_ids`` (NaN for unknown ids)."""
        return self.row_index().reindex(np.asarray(item_ids, dtype=str)).to_numpy()
