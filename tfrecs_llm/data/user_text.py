"""The one place where a user's query text is built from free text and viewing history.

Training (`UserTextBuilder.for_events`), offline recommendation and the server
(`UserTextBuilder.for_users`, `UserTextBuilder.build`) share this code, so the query tower
sees the same kind of text everywhere:

    "<free text> ; <newest title> ; <older title> ; ..."

cut to a word budget. During training an event's text only uses events with a strictly earlier
timestamp, so the text never contains the item it is trained to retrieve.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from tfrecs_llm.config import DataConfig
from tfrecs_llm.data.schema import require_validated_interactions

_WORD = re.compile(r"\S+")


class UserTextBuilder:
    """Builds user texts from free text and item titles (newest first, word-capped).

    Args:
        item_titles: item id -> title; history items missing here are skipped (e.g. removed items).
        history_length: how many distinct most recent items contribute their title (0 = none).
        max_words: whitespace-separated word budget of the whole text; cut from the end.
        title_separator: placed between titles, and between the free text and the titles.
    """

    def __init__(
        self,
        item_titles: Mapping[str, str],
        history_length: int = 10,
        max_words: int = 60,
        title_separator: str = " ; ",
    ) -> None:
        if history_length < 0:
            raise ValueError(f"history_length must be >= 0, got {history_length}")
        if max_words < 1:
            raise ValueError(f"max_words must be >= 1, got {max_words}")
        self.item_titles = dict(item_titles)
        self.history_length = history_length
        self.max_words = max_words
        self.title_separator = title_separator

    @classmethod
    def from_config(cls, items: pd.DataFrame, config: DataConfig, titles: bool = True) -> "UserTextBuilder":
        """A builder over the titles of a validated item catalog (``validate_items``); with
        ``titles=False`` user texts are the free text alone (a sequential query tower reads the
        history itself)."""
        return cls(
            dict(zip(items["item_id"], items["title"])),
            history_length=config.history_length if titles else 0,
            max_words=config.max_user_text_words,
            title_separator=config.title_separator,
        )

    def build(self, free_text: str = "", history_item_ids: Sequence[str] = ()) -> str:
        """The user text for free text plus a history given OLDEST FIRST (as it happened).

        Titles of the ``history_length`` most recent distinct known items come newest first;
        an item seen several times counts once, at its most recent position.
        """
        recent: list[str] = []
        for item_id in history_item_ids:
            self._remember(recent, str(item_id))
        return self._compose(free_text, self._titles_of(recent))

    def for_events(self, interactions: pd.DataFrame) -> pd.Series:
        """The user text just before every event, aligned with ``interactions.index``.

        Free text: the event's own ``user_text`` (if the column exists). History: the same
        user's events with a timestamp STRICTLY before this one; events sharing a timestamp
        are not history of each other. ``interactions`` must be validated (string ids, UTC
        timestamps). Cost: one stable sort plus O(history_length) per event.
        """
        require_validated_interactions(interactions)
        free_texts = (
            interactions["user_text"].tolist()
            if "user_text" in interactions.columns
            else [""] * len(interactions)
        )
        item_ids = interactions["item_id"].tolist()
        texts = [""] * len(interactions)
        recent: list[str] = []
        for first_of_user, same_time in _time_groups(interactions):
            if first_of_user:
                recent = []
            titles = self._titles_of(recent)
            for pos in same_time:
                texts[pos] = self._compose(free_texts[pos], titles)
            for pos in same_time:
                self._remember(recent, item_ids[pos])
        return pd.Series(texts, index=interactions.index, dtype=object, name="user_text")

    def for_users(
        self,
        interactions: pd.DataFrame,
        user_ids: Sequence[str],
        free_texts: Sequence[str] | None = None,
    ) -> list[str]:
        """The user text as of now (all of each user's events), one per entry of ``user_ids``.

        Users without events get just their free text (possibly ""). ``interactions`` must be
        validated; same-timestamp events keep their row order.
        """
        if free_texts is None:
            free_texts = [""] * len(user_ids)
        elif len(free_texts) != len(user_ids):
            raise ValueError(
                f"free_texts has {len(free_texts)} entries but user_ids has {len(user_ids)}; "
                "give one free text per user (or none)"
            )
        require_validated_interactions(interactions)
        wanted = [str(user_id) for user_id in user_ids]
        events = interactions[interactions["user_id"].isin(wanted).to_numpy()]
        order = np.argsort(events["timestamp"].to_numpy(dtype="datetime64[ns]"), kind="stable")
        histories = events.iloc[order].groupby("user_id", sort=False)["item_id"].agg(list)
        return [
            self.build(text, histories.get(user_id, ()))
            for user_id, text in zip(wanted, free_texts)
        ]

    def _remember(self, recent: list[str], item_id: str) -> None:
        """Moves ``item_id`` to the front of the newest-first list, capped at history_length."""
        if item_id not in self.item_titles:
            return
        if item_id in recent:
            recent.remove(item_id)
        recent.insert(0, item_id)
        del recent[self.history_length :]

    def _titles_of(self, item_ids: Iterable[str]) -> list[str]:
        return [self.item_titles[item_id] for item_id in item_ids]

    def _compose(self, free_text: str | None, titles: list[str]) -> str:
        free_text = (free_text or "").strip()
        text = self.title_separator.join(([free_text] if free_text else []) + titles)
        return self._cut(text)

    def _cut(self, text: str) -> str:
        """Keeps the first ``max_words`` whole words (and no dangling separator)."""
        if len(text.split()) <= self.max_words:
            return text
        words = list(_WORD.finditer(text))[: self.max_words]
        if words[-1].group() == self.title_separator.strip() and len(words) > 1:
            words.pop()
        return text[: words[-1].end()]


def _time_groups(interactions: pd.DataFrame) -> Iterator[tuple[bool, list[int]]]:
    """(first group of its user?, row positions) per (user, timestamp), each user oldest first.

    Rows sharing user and timestamp keep their file order (lexsort is stable).
    """
    if len(interactions) == 0:
        return
    users, _ = pd.factorize(interactions["user_id"])
    times = interactions["timestamp"].to_numpy(dtype="datetime64[ns]")
    order = np.lexsort((times, users))
    sorted_users, sorted_times = users[order], times[order]
    new_user = np.r_[True, sorted_users[1:] != sorted_users[:-1]]
    starts = np.flatnonzero(new_user | np.r_[True, sorted_times[1:] != sorted_times[:-1]])
    positions = order.tolist()
    ends = [*starts[1:].tolist(), len(positions)]
    for start, end, first in zip(starts.tolist(), ends, new_user[starts].tolist()):
        yield first, positions[start:end]
