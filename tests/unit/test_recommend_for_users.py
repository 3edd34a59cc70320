"""``Recommender.recommend_for_users``: what the server's per-user endpoint does, in process."""

from __future__ import annotations

import pandas as pd

from tests.conftest import make_tiny_encoder
from tests.unit.tiny_data import tiny_interactions, tiny_items
from tfrecs_llm.config import Config
from tfrecs_llm.recommender import Recommender


def test_users_get_unseen_items_from_their_history_with_titles_and_reasons() -> None:
    config = Config().with_overrides({"train.epochs": 3, "train.batch_size": 32, "encoder.sequence_length": 32})
    events = tiny_interactions(num_users=30, events_per_user=3)  # five unseen items of their topic each
    model = Recommender.train(tiny_items(), events, config, encoder=make_tiny_encoder(), verbose=False)
    users = ["u0", "u1", "u2", "new-user"]
    lists = model.recommend_for_users(users, events, k=5)
    frame = model.recommend_for_users(users, events, k=5, as_frame=True)

    seen = events.groupby("user_id")["item_id"].agg(set)
    for user, recs in zip(users, lists):
        assert len(recs) == 5 and not {item for item, _ in recs} & seen.get(user, set())
    # The same as building each user's text from the log and excluding what they have seen.
    texts = model.user_texts(users, events)
    assert texts[0] and texts[-1] == ""
    by_hand = model.recommend(texts, k=5, exclude_item_ids=[sorted(seen.get(u, set())) for u in users])
    assert [[i for i, _ in r] for r in lists] == [[i for i, _ in r] for r in by_hand]
    assert list(frame.columns) == ["user_id", "rank", "item_id", "title", "score", "reason"]
    assert frame["rank"].tolist() == [1, 2, 3, 4, 5] * 4
    assert frame.groupby("user_id", sort=False)["item_id"].agg(list).tolist() == [[i for i, _ in r] for r in lists]
    titles = dict(zip(tiny_items()["item_id"], tiny_items()["title"]))
    assert (frame["title"] == frame["item_id"].map(titles)).all()
    assert frame.loc[frame["user_id"] == "u0", "reason"].str.startswith("Because you liked").any()
    assert isinstance(frame, pd.DataFrame)
