"""Fast checks of the bundled sample dataset, its deterministic generator and its baselines."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tfrecs_llm.data.sample import INTERACTIONS_FILE, ITEMS_FILE, SAMPLE_DIR, load_sample
from tfrecs_llm.data.sample.generate import (
    DEFAULT_SEED,
    baseline_report,
    write_sample,
)

ITEM_COLUMNS = ["item_id", "title", "description", "category", "published_at"]
INTERACTION_COLUMNS = ["user_id", "item_id", "timestamp", "rating", "user_text"]
ISO_UTC = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z"


@pytest.fixture(scope="module")
def sample() -> tuple[pd.DataFrame, pd.DataFrame]:
    return load_sample()


@pytest.fixture(scope="module")
def report(sample: tuple[pd.DataFrame, pd.DataFrame]) -> dict[str, float]:
    return baseline_report(*sample)


def test_files_exist_and_stay_small() -> None:
    sizes = [(SAMPLE_DIR / name).stat().st_size for name in (ITEMS_FILE, INTERACTIONS_FILE)]
    assert all(size > 0 for size in sizes)
    assert sum(sizes) <= 3_000_000


def test_raw_timestamps_are_iso_utc_with_seconds() -> None:
    items = pd.read_csv(SAMPLE_DIR / ITEMS_FILE, dtype=str, keep_default_na=False)
    interactions = pd.read_csv(SAMPLE_DIR / INTERACTIONS_FILE, dtype=str, keep_default_na=False)
    assert items["published_at"].str.fullmatch(ISO_UTC).all()
    assert interactions["timestamp"].str.fullmatch(ISO_UTC).all()


def test_items(sample: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    items, interactions = sample
    assert list(items.columns) == ITEM_COLUMNS
    assert 600 <= len(items) <= 800
    assert items["item_id"].is_unique
    assert items["item_id"].str.fullmatch(r"i\d{4}").all()
    assert items["title"].nunique() >= 0.95 * len(items)
    assert items["description"].str.count(r"\.").between(1, 3).all()
    per_topic = items["category"].value_counts()
    assert 12 <= len(per_topic) <= 16
    assert per_topic.between(40, 60).all()
    assert str(items["published_at"].dt.tz) == "UTC"
    assert items["published_at"].max() < interactions["timestamp"].min()


def test_interactions(sample: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    items, interactions = sample
    assert list(interactions.columns) == INTERACTION_COLUMNS
    assert 10_000 <= len(interactions) <= 15_000
    assert interactions["user_id"].str.fullmatch(r"u\d{4}").all()
    assert 1000 <= interactions["user_id"].nunique() <= 1500
    assert interactions["item_id"].isin(items["item_id"]).all()
    assert interactions["rating"].between(1, 5).all()
    assert not interactions.duplicated(["user_id", "item_id"]).any()
    by_user = interactions.groupby("user_id")
    assert by_user.size().between(5, 25).all()
    assert by_user["timestamp"].agg(lambda t: t.is_monotonic_increasing and t.is_unique).all()
    window = interactions["timestamp"].max() - interactions["timestamp"].min()
    assert pd.Timedelta(days=150) <= window <= pd.Timedelta(days=190)


def test_user_text_is_per_user_and_never_names_the_item(
    sample: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    items, interactions = sample
    by_user = interactions.groupby("user_id")["user_text"]
    assert (by_user.nunique() == 1).all()
    assert 0.2 <= (by_user.first() != "").mean() <= 0.4
    titles = interactions["item_id"].map(items.set_index("item_id")["title"]).str.lower()
    texts = interactions["user_text"].str.lower()
    assert not any(title in text for title, text in zip(titles, texts) if text)


def test_regenerating_gives_byte_identical_files(tmp_path: Path) -> None:
    write_sample(tmp_path, DEFAULT_SEED)
    for name in (ITEMS_FILE, INTERACTIONS_FILE):
        assert (tmp_path / name).read_bytes() == (SAMPLE_DIR / name).read_bytes(), name


def test_baselines_leave_headroom_for_text(report: dict[str, float]) -> None:
    popularity = report["popularity_recall@10"]
    assert report["n_test_events"] == report["n_users"]
    assert popularity >= 0.05
    assert report["text_tfidf_recall@10"] >= 1.5 * popularity
    assert report["topic_oracle_recall@10"] > report["text_tfidf_recall@10"]


def test_readme_quotes_the_measured_baselines(report: dict[str, float]) -> None:
    readme = (SAMPLE_DIR / "README.md").read_text(encoding="utf-8")
    for key in ("popularity_recall@10", "text_tfidf_recall@10", "topic_oracle_recall@10"):
        assert f"{report[key]:.4f}" in readme, key
    for key in ("n_items", "n_users", "n_interactions"):
        assert f"{report[key]:,}" in readme, key
