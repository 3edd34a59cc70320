"""A tiny deterministic catalog and event log with three clear topics (for fast unit tests)."""

from __future__ import annotations

import numpy as np
import pandas as pd

TOPICS = {
    "space": ["space", "rocket", "planet", "star"],
    "cooking": ["cooking", "pasta", "sauce", "garden"],
    "music": ["jazz", "music", "history", "mystery"],
}

SPACE_TEXT = "space rocket planet star"
NEW_ITEM = {
    "item_id": "space-new",
    "title": "rocket star planet space",
    "description": "a space story about planet and rocket",
    "category": "space",
}
"""A fresh item whose text matches SPACE_TEXT (for add-items tests)."""


def tiny_items(per_topic: int = 8) -> pd.DataFrame:
    rows = []
    for t, (topic, words) in enumerate(TOPICS.items()):
        for i in range(per_topic):
            rows.append(
                {
                    "item_id": f"{topic}-{i}",
                    "title": f"{words[i % 4]} {words[(i + 1) % 4]} {i}",
                    "description": f"a {topic} story about {words[(i + 2) % 4]} and {words[(i + 3) % 4]}",
                    "category": topic,
                }
            )
    return pd.DataFrame(rows)


def tiny_interactions(num_users: int = 60, events_per_user: int = 6, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    items = tiny_items()
    rows = []
    for u in range(num_users):
        topic = list(TOPICS)[u % len(TOPICS)]
        pool = items[items["category"] == topic]["item_id"].to_numpy()
        chosen = rng.choice(pool, size=events_per_user, replace=False)
        for e, item in enumerate(chosen):
            rows.append({"user_id": f"u{u}", "item_id": item, "timestamp": 1_700_000_000 + 3600 * e + u})
    return pd.DataFrame(rows)


def tiny_split(num_users: int = 60) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Validated ``(items, train, test)``: the tiny tables split leave-last-out."""
    from tfrecs_llm.data.schema import validate_interactions, validate_items
    from tfrecs_llm.data.splits import leave_last_out

    items = validate_items(tiny_items())
    train, test = leave_last_out(validate_interactions(tiny_interactions(num_users=num_users), items))
    return items, train, test
