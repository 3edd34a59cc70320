"""Dataset loaders on hand-written fixtures in the exact upstream formats, and broken copies."""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from tfrecs_llm.data.loaders import (
    load_amazon_reviews,
    load_generic,
    load_movielens_100k,
    load_movielens_csv,
)
from tfrecs_llm.data.loaders.generic import earlier_user_texts
from tfrecs_llm.data.schema import SchemaError, validate_interactions

DATASETS = Path(__file__).parents[1] / "fixtures" / "datasets"
ITEM_MAP = {"sku": "item_id", "name": "title", "blurb": "description",
            "department": "category", "launched": "published_at"}  # fmt: skip
EVENT_MAP = {"customer": "user_id", "sku": "item_id", "ts": "timestamp",
             "stars": "rating", "note": "user_text"}  # fmt: skip
AMAZON_FILES = ("All_Beauty.jsonl", "meta_All_Beauty.jsonl")
GENERIC_FILES = ("products.csv", "events.csv")
LOADERS: dict[str, Callable[[Path], tuple[pd.DataFrame, pd.DataFrame]]] = {
    "ml-100k": load_movielens_100k,
    "ml-latest-small": load_movielens_csv,
    "amazon-2023": lambda d: load_amazon_reviews(*(d / name for name in AMAZON_FILES)),
    "generic": lambda d: load_generic(*(d / n for n in GENERIC_FILES), ITEM_MAP, EVENT_MAP),
}


def _copy(tmp_path: Path, dataset: str, name: str, edit: Callable[[bytes], bytes | None]) -> Path:
    """A copy of fixture ``dataset`` whose file ``name`` is edited (deleted if edit gives None)."""
    directory = shutil.copytree(DATASETS / dataset, tmp_path / dataset)
    path = directory / name
    data = edit(path.read_bytes())
    if data is None:
        path.unlink()
    else:
        path.write_bytes(data)
    return directory


def _line(number: int, new: bytes) -> Callable[[bytes], bytes]:
    def edit(data: bytes) -> bytes:
        lines = data.split(b"\n")
        lines[number - 1] = new
        return b"\n".join(lines)

    return edit


def _sub(old: bytes, new: bytes) -> Callable[[bytes], bytes]:
    return lambda data: data.replace(old, new, 1)


def _user_texts(interactions: pd.DataFrame, user: str) -> list[str]:
    return interactions.loc[interactions["user_id"] == user, "user_text"].tolist()


def test_movielens_100k_items_describe_genres_and_dates():
    items, _ = load_movielens_100k(DATASETS / "ml-100k")
    assert len(items) == 12
    assert list(items.columns) == [
        "item_id", "title", "description", "category", "tags", "published_at"
    ]  # fmt: skip
    toy = items.iloc[0]
    assert toy["title"] == "Toy Story (1995)"
    assert toy["description"] == "Animation, Children's, Comedy film released 01-Jan-1995."
    assert (toy["category"], toy["tags"]) == ("Animation", "Animation|Children's|Comedy")
    assert toy["published_at"] == pd.Timestamp("1995-01-01", tz="UTC")
    by_id = items.set_index("item_id")
    assert by_id.at["1126", "title"] == "Misérables, Les (1995)"  # latin-1 byte 0xE9
    assert by_id.loc["267", ["description", "category", "tags"]].tolist() == ["Film.", "", ""]
    assert pd.isna(by_id.at["267", "published_at"])
    assert by_id.at["10", "description"] == "Drama, War film released 22-Jan-1996."


def test_movielens_100k_interactions_keep_file_order():
    _, interactions = load_movielens_100k(DATASETS / "ml-100k")
    assert len(interactions) == 30
    assert list(interactions.columns) == ["user_id", "item_id", "timestamp", "rating"]
    assert interactions["item_id"].tolist()[:4] == ["1", "2", "1", "50"]
    assert interactions["user_id"].tolist()[:4] == ["1", "1", "2", "1"]
    assert interactions.loc[0, "timestamp"] == pd.Timestamp(874965758, unit="s", tz="UTC")
    assert interactions.loc[0, "rating"] == 5.0
    assert interactions.index.equals(pd.RangeIndex(30))


def test_movielens_csv_items():
    items, _ = load_movielens_csv(DATASETS / "ml-latest-small")
    assert len(items) == 14
    by_id = items.set_index("item_id")
    assert by_id.at["1", "description"] == (
        "Adventure, Animation, Children, Comedy, Fantasy film from 1995."
    )
    assert by_id.at["11", "title"] == "American President, The (1995)"  # quoted, with a comma
    assert by_id.at["4973", "title"].startswith("Amélie (Fabuleux destin d'Amélie Poulain, Le)")
    no_genres = by_id.loc["114335", ["description", "category", "tags"]].tolist()
    assert no_genres == ["Film from 1957.", "", ""]
    assert by_id.at["149334", "description"] == "Drama, Thriller film."  # no year in the title
    assert by_id.at["296", "tags"] == "Comedy|Crime|Drama|Thriller"


def test_movielens_csv_tags_are_user_text_of_later_ratings_only():
    _, interactions = load_movielens_csv(DATASETS / "ml-latest-small")
    assert len(interactions) == 24
    assert interactions["item_id"].tolist()[:3] == ["1", "3", "6"]  # file order
    assert interactions.loc[0, "timestamp"] == pd.Timestamp(964982703, unit="s", tz="UTC")
    assert interactions.loc[9, "rating"] == 3.5
    # User 2 rates 318 (tag "prison"), 60756 (3 tags), then 296 and 1 at the same second, then
    # 114335; the tag on 89774 has no rating and is ignored.
    ferrell = "funny, Highly quotable, will ferrell"
    assert _user_texts(interactions, "2") == ["", "prison", ferrell, ferrell, ferrell]
    # User 3 in file order: 32, 260 (tag sci-fi), 4973 (tag "quirky, romantic"), 2 (first), 11.
    assert _user_texts(interactions, "3") == ["", "", "sci-fi", "", "quirky, romantic"]
    assert _user_texts(interactions, "4") == ["", "", "", "pixar"]
    assert set(_user_texts(interactions, "1")) == {""}


def test_movielens_csv_without_tags_and_with_byte_order_mark(tmp_path):
    directory = _copy(tmp_path / "a", "ml-latest-small", "tags.csv", lambda data: None)
    assert set(load_movielens_csv(directory)[1]["user_text"]) == {""}
    directory = _copy(tmp_path / "b", "ml-latest-small", "ratings.csv", b"\xef\xbb\xbf".__add__)
    assert len(load_movielens_csv(directory)[1]) == 24


def test_invalid_utf8_names_line_and_byte_offset(tmp_path):
    directory = _copy(tmp_path, "ml-latest-small", "ratings.csv", _line(4, b"1,6,4.\xff0,9"))
    offset = len(b"userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.0,964981247\n") + 6
    with pytest.raises(SchemaError) as caught:
        load_movielens_csv(directory)
    message = str(caught.value)
    assert "ratings.csv line 4: byte b'\\xff'" in message
    assert f"byte offset {offset} (byte 7 of the line) is not valid utf-8" in message


def test_amazon_items():
    items, _ = LOADERS["amazon-2023"](DATASETS / "amazon-2023")
    assert len(items) == 8 and "B07SDXM2P4" not in set(items["item_id"])  # empty title
    by_id = items.set_index("item_id")
    assert by_id.at["B00YQ6X8EO", "description"] == (
        "A lightweight spray for beachy waves. Sea salt and aloe add texture. "
        "Coconut water hydrates."
    )
    assert by_id.at["B00YQ6X8EO", "category"] == "All Beauty"
    mist = by_id.loc["B097R46CSY"]  # main_category null: first of categories; HTML unescaped
    assert mist["title"] == "Lavender Body Mist & Pillow Spray"
    assert mist["category"] == "Beauty & Personal Care"
    assert mist["tags"] == "Beauty & Personal Care|Fragrance|Body Sprays"
    assert by_id.at["B099DRHW5V", "description"] == (
        "Everything for a manicure. 12 colours. Quick dry formula."
    )


def test_amazon_reviews_are_user_text_of_later_events_only():
    _, interactions = LOADERS["amazon-2023"](DATASETS / "amazon-2023")
    # Lines 9 and 11 review products without a titled item (B0NOMETA01, B07SDXM2P4).
    assert len(interactions) == 10
    assert list(interactions.columns)[3:] == ["rating", "user_text"]
    assert interactions.loc[2, "item_id"] == "B097R46CSY"  # parent_asin, not asin B07PNNCSP9
    assert interactions.loc[0, "timestamp"] == pd.Timestamp(1588687728923, unit="ms", tz="UTC")
    assert interactions.loc[3, "rating"] == 1.0
    texts = interactions["user_text"].tolist()
    assert texts[0].startswith("Works great but smells a little weird. This product does what")
    assert texts[1:4] == ["", "", ""]  # each user's first event
    assert texts[4].startswith("Pretty Color. The polish was quiet thick")
    assert texts[5:8] == ["", "Synthetic feeling. Felt synthetic.", ""]  # line 8 ties line 3
    assert texts[8].startswith("Such a lovely scent but not overpowering. This spray is really")
    assert "<br" not in texts[8] and "fine, and does the trick. I will say" in texts[8]
    assert texts[9] == "A+. Love it."


def test_amazon_word_limits_and_gzip(tmp_path):
    plain = [DATASETS / "amazon-2023" / name for name in AMAZON_FILES]
    items, interactions = load_amazon_reviews(*plain, max_description_words=3, max_review_words=5)
    assert items.loc[0, "description"] == "A lightweight spray"
    assert interactions.loc[8, "user_text"] == "Such a lovely scent but"
    zipped = [tmp_path / f"{path.name}.gz" for path in plain]
    for path, gz in zip(plain, zipped):
        gz.write_bytes(gzip.compress(path.read_bytes()))
    for expected, actual in zip(load_amazon_reviews(*plain), load_amazon_reviews(*zipped)):
        pd.testing.assert_frame_equal(expected, actual)
    zipped[0].write_bytes(zipped[0].read_bytes()[:-300])
    with pytest.raises(SchemaError, match=r"gz: cannot read after line \d+ .*complete gzip file"):
        load_amazon_reviews(*zipped)


def test_earlier_user_texts_skip_ties_and_empty_texts():
    events = validate_interactions(
        pd.DataFrame({"user_id": ["u", "v", "u", "u", "u"], "item_id": list("abcde"),
                      "timestamp": [1, 1, 2, 2, 3]})  # fmt: skip
    )
    texts = earlier_user_texts(events, ["first", "other user", "", "tie", ""])
    assert texts.tolist() == ["", "", "first", "first", "tie"]


def test_generic_csv_with_renamed_columns():
    items, interactions = LOADERS["generic"](DATASETS / "generic")
    assert items["item_id"].tolist() == ["p-001", "p-002", "p-003", "p-004"]
    assert items.loc[0, "description"] == "Light shoes with a grippy sole, for muddy trails."
    assert pd.isna(items.loc[3, "published_at"])
    assert len(interactions) == 5
    assert interactions.loc[0, "user_text"] == "need shoes for the Alps, and a stove"
    assert interactions.loc[2, "timestamp"] == pd.Timestamp("2024-01-02T19:15:00Z")
    assert interactions["rating"].tolist() == [5.0, 4.0, 3.0, 5.0, 4.0]


def test_generic_parquet_matches_csv(tmp_path):
    paths = []
    for name in ("products", "events"):
        paths.append(tmp_path / f"{name}.parquet")
        pd.read_csv(DATASETS / "generic" / f"{name}.csv", dtype=str).to_parquet(paths[-1])
    from_parquet = load_generic(*paths, ITEM_MAP, EVENT_MAP)
    for expected, actual in zip(LOADERS["generic"](DATASETS / "generic"), from_parquet):
        pd.testing.assert_frame_equal(expected, actual)


def test_generic_mapping_onto_an_unknown_column():
    with pytest.raises(SchemaError, match="'name' -> 'titel' targets no column of ours"):
        load_generic(*(DATASETS / "generic" / name for name in GENERIC_FILES), {"name": "titel"})


MALFORMED = [
    ("ml-100k", "u.data", _line(5, b"3\t7\t4"),
     "u.data line 5: expected 4 tab-separated fields (user id, item id, rating, timestamp), got 3 "
     "(truncated line?)"),
    ("ml-100k", "u.data", _line(3, b"2\t1\t4\tyesterday"),
     "u.data (rows are line numbers): column 'timestamp' has 1 unparseable value (first rows: "
     "row 3 'yesterday')"),
    ("ml-100k", "u.data", _line(2, b"1\t9999\t3\t876893171"), "not in the item catalog (first "
     "rows: row 2 '9999')"),
    ("ml-100k", "u.item", _sub(b"|1|0|0\n4|", b"|1|0|2\n4|"),
     "u.item line 3: genre flag 'Western' is '2'; expected 0 or 1"),
    ("ml-100k", "u.item", _sub(b"|0|0|0\n", b"|0|0\n"),
     "u.item line 1: expected 24 pipe-separated fields"),
    ("ml-100k", "u.item", _sub(b"01-Jan-1995", b"1995-01-01"),
     "u.item line 1: release date '1995-01-01'; expected a date like 01-Jan-1995"),
    ("ml-100k", "u.item", _sub(b"\n3|", b"\n1|"), "(first rows: row 1 '1', row 3 '1')"),
    ("ml-100k", "u.genre", _line(3, b"Adventure|7"), "u.genre line 3: genre index '7'; expected 2"),
    ("ml-100k", "u.genre", lambda data: None, "u.genre: file not found; expected MovieLens 100K"),
    ("ml-latest-small", "ratings.csv", _line(1, b"userId,movieId,score,timestamp"),
     "ratings.csv line 1: header lacks column 'rating'; expected MovieLens ratings.csv with "
     "header userId,movieId,rating,timestamp"),
    ("ml-latest-small", "ratings.csv", _line(1, b"userId,movieId,rating,rating"),
     "ratings.csv line 1: repeated column name 'rating'"),
    ("ml-latest-small", "ratings.csv", lambda data: data.rstrip(b"\n")[:-10],
     "ratings.csv line 25: expected 4 comma-separated fields (userId, movieId, rating, "
     "timestamp), got 3 (truncated line?): '5,318,4.5'"),
    ("ml-latest-small", "ratings.csv", _line(2, b"1,1,4.0,964982703,x"), "line 2: expected 4 "
     "comma-separated fields (userId, movieId, rating, timestamp), got 5"),
    ("ml-latest-small", "ratings.csv", _line(4, b"1,6,four,964982224"),
     "ratings.csv (rows are line numbers): column 'rating' has 1 non-numeric value (first rows: "
     "row 4 'four')"),
    ("ml-latest-small", "movies.csv", _line(15, b'149334,"Nocturnal Animals,Drama|Thriller'),
     "movies.csv line 15: unexpected end of data (unterminated quote or truncated file?)"),
    ("ml-latest-small", "tags.csv", _line(3, b"2,60756,Highly quotable"),
     "tags.csv line 3: expected 4 comma-separated fields"),
    ("ml-latest-small", "movies.csv", lambda data: b"", "movies.csv: empty file; expected "
     "MovieLens movies.csv with header movieId,title,genres"),
    ("amazon-2023", "All_Beauty.jsonl", lambda data: data[:-40], "All_Beauty.jsonl line 12: "
     "invalid JSON at column 218: Unterminated string starting at (the line does not end with "
     "'}': truncated file?)"),
    ("amazon-2023", "All_Beauty.jsonl", _line(3, b"{rating: 5}"),
     "All_Beauty.jsonl line 3: invalid JSON at column 2"),
    ("amazon-2023", "All_Beauty.jsonl", _sub(b'"parent_asin": "B081TJ8YS3", ', b""),
     "All_Beauty.jsonl line 2: missing key 'parent_asin'; expected an Amazon Reviews 2023 review "
     "(<Category>.jsonl) with keys user_id, parent_asin, timestamp, rating; found keys: rating"),
    ("amazon-2023", "All_Beauty.jsonl", _sub(b"1617904219785", b'"2021-04-08"'),
     "line 4: 'timestamp' is '2021-04-08'; expected an Amazon Reviews 2023 review (<Category>"
     ".jsonl) whose timestamp is an integer count of milliseconds since 1970-01-01 UTC"),
    ("amazon-2023", "All_Beauty.jsonl", _sub(b"Yes!", b"Yes\xff"),
     "All_Beauty.jsonl line 3: byte b'\\xff' at byte offset 1115"),
    ("amazon-2023", "meta_All_Beauty.jsonl", _line(4, b"[1, 2]"),
     "meta_All_Beauty.jsonl line 4: a JSON list; expected an Amazon Reviews 2023 item"),
    ("amazon-2023", "meta_All_Beauty.jsonl", _sub(b'"description": [], ', b'"description": 5, '),
     "meta_All_Beauty.jsonl line 3: 'description' is '5'; expected a list of strings"),
    ("amazon-2023", "meta_All_Beauty.jsonl", _sub(b"B09JS339BZ", b"B081TJ8YS3"),
     "'item_id' has 2 duplicate values (first rows: row 2 'B081TJ8YS3', row 4 'B081TJ8YS3')"),
    ("generic", "events.csv", _line(4, b"c2,p-999,2024-01-02,3,"),
     "events.csv (rows are line numbers): column 'item_id' has 1 value not in the item catalog "
     "(first rows: row 4 'p-999')"),
    ("generic", "products.csv", _line(1, b"sku,name,blurb,dept,launched"),
     "products.csv: missing column 'department' (mapped to our column 'category')"),
]  # fmt: skip


@pytest.mark.parametrize("dataset, name, edit, expected", MALFORMED)
def test_malformed_upstream_files(tmp_path, dataset, name, edit, expected):
    directory = _copy(tmp_path, dataset, name, edit)
    with pytest.raises(SchemaError) as caught:
        LOADERS[dataset](directory)
    assert expected in str(caught.value)
