"""Requests as the front builds them from an event log: each user's text, recent items and the
items to exclude; and the answers as a table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tfrecs_llm.data.catalog import Catalog
from tfrecs_llm.data.events import positive_events
from tfrecs_llm.data.sequences import recent_items
from tfrecs_llm.data.user_text import UserTextBuilder


@dataclass
class UserRequests:
    """One entry per user: ``texts`` (built as in training), ``histories`` (recent positive
    items, oldest first) and ``exclusions`` (every item the user has an event on)."""

    user_ids: list[str]
    texts: list[str]
    histories: list[list[str]]
    exclusions: list[list[str]]


def user_requests(
    events: pd.DataFrame,
    user_ids: Sequence[str],
    builder: UserTextBuilder,
    history_length: int,
    free_texts: Sequence[str] | None = None,
) -> UserRequests:
    """The requests for ``user_ids`` as of now, from validated ``events``."""
    users = [str(user) for user in user_ids]
    mine = events[events["user_id"].isin(set(users)).to_numpy()]
    seen = mine.groupby("user_id")["item_id"].agg(lambda ids: list(dict.fromkeys(map(str, ids))))
    return UserRequests(
        users,
        builder.for_users(events, users, free_texts),
        recent_items(positive_events(mine), users, history_length),
        [seen.get(user, []) for user in users],
    )


def recommendations_frame(
    user_ids: Sequence[str],
    recommendations: Sequence[Sequence[tuple[str, float]]],
    reasons: Sequence[Sequence[str]],
    catalog: Catalog,
) -> pd.DataFrame:
    """``user_id, rank, item_id, title, score, reason`` rows (ranks from 1), per user best first."""
    titles = dict(zip(catalog.item_ids, catalog.items["title"]))
    rows = [
        {"user_id": user, "rank": rank, "item_id": item, "title": titles.get(item, ""), "score": score,
         "reason": reason}
        for user, recs, why in zip(user_ids, recommendations, reasons)
        for rank, ((item, score), reason) in enumerate(zip(recs, why), 1)
    ]
    return pd.DataFrame(rows, columns=["user_id", "rank", "item_id", "title", "score", "reason"])


def padded_lists(user_texts: Sequence[str], lists: Sequence[Sequence[str]] | None, name: str) -> np.ndarray:
    """``[len(user_texts), longest list]`` bytes, ``b""`` padding; checks ``lists`` matches."""
    if isinstance(user_texts, str):
        raise TypeError("user_texts must be a list of strings, got a single string")
    if lists is not None and len(lists) != len(user_texts):
        raise ValueError(f"{name} has {len(lists)} lists for {len(user_texts)} user texts")
    lists = lists or [[] for _ in user_texts]
    padded = np.full((len(user_texts), max((len(e) for e in lists), default=0)), "", dtype=object)
    for row, values in enumerate(lists):
        padded[row, : len(values)] = [str(v) for v in values]
    return padded.astype(bytes)
