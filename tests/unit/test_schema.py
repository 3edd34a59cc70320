"""Validation and loading of items and interactions: normalisation and precise error messages."""

from __future__ import annotations

import datetime

import numpy as np
import pandas as pd
import pytest

from tfrecs_llm.data.schema import (
    SchemaError,
    load_interactions,
    load_items,
    require_validated_interactions,
    validate_interactions,
    validate_items,
)


def _items(**overrides) -> pd.DataFrame:
    data = {
        "item_id": ["a", "b", "c"],
        "title": ["Alpha", "Bravo", "Charlie"],
        "description": ["first", "second", "third"],
    }
    data.update(overrides)
    return pd.DataFrame(data)


def _events(**overrides) -> pd.DataFrame:
    data = {
        "user_id": ["u1", "u1", "u2"],
        "item_id": ["a", "b", "a"],
        "timestamp": [1_700_000_000, 1_700_000_100, 1_700_000_200],
    }
    data.update(overrides)
    return pd.DataFrame(data)


# ---- validate_items: normalisation ------------------------------------------------------------


def test_validate_items_normalises_ids_texts_and_dates():
    raw = pd.DataFrame(
        {
            "item_id": [12, " 13 ", 14.0],
            "title": ["  Dune ", 1984, "Emma"],
            "description": ["desert", np.nan, None],
            "published_at": ["2024-01-05T10:00:00+02:00", None, 1_700_000_000],
            "extra": [1, 2, 3],
        },
        index=[10, 11, 12],
    )
    items = validate_items(raw)
    assert items["item_id"].tolist() == ["12", "13", "14"]
    assert items["title"].tolist() == ["Dune", "1984", "Emma"]
    assert items["description"].tolist() == ["desert", "", ""]
    assert items["category"].tolist() == ["", "", ""] and items["tags"].tolist() == ["", "", ""]
    assert str(items["published_at"].dtype) == "datetime64[ns, UTC]"
    assert items["published_at"].iloc[0] == pd.Timestamp("2024-01-05 08:00", tz="UTC")
    assert pd.isna(items["published_at"].iloc[1])
    assert items["published_at"].iloc[2] == pd.Timestamp(1_700_000_000, unit="s", tz="UTC")
    assert items["extra"].tolist() == [1, 2, 3]
    assert items.index.tolist() == [10, 11, 12]
    assert items["item_id"].dtype == object
    assert raw["item_id"].tolist() == [12, " 13 ", 14.0]  # the input is not modified


def test_validate_items_keeps_given_category_and_tags():
    items = validate_items(_items(category=["x", None, "z"], tags=["t1 t2", "", np.nan]))
    assert items["category"].tolist() == ["x", "", "z"]
    assert items["tags"].tolist() == ["t1 t2", "", ""]


# ---- validate_items: errors -------------------------------------------------------------------


def test_missing_columns_are_named_with_the_columns_found():
    with pytest.raises(SchemaError) as error:
        validate_items(pd.DataFrame({"id": [1], "name": ["x"]}), source="items.csv")
    message = str(error.value)
    assert message.startswith(
        "items.csv: missing required columns 'item_id', 'title', 'description'; expected columns"
    )
    assert "found columns: 'id', 'name'" in message


def test_duplicate_ids_name_file_lines_and_rows():
    ids = ["1", "2", 17, "3", "4", "5", "6", " 17 "]
    with pytest.raises(SchemaError) as error:
        validate_items(
            _items(item_id=ids, title=list("abcdefgh"), description=[""] * 8), source="items.csv"
        )
    assert str(error.value) == (
        "items.csv: column 'item_id' has 2 duplicate values "
        "(first rows: line 4 (row 2) '17', line 9 (row 7) '17'); item ids must be unique"
    )


def test_empty_item_ids_are_errors():
    with pytest.raises(SchemaError) as error:
        validate_items(_items(item_id=["a", np.nan, "  "]), source="catalog")
    message = str(error.value)
    assert "catalog: column 'item_id' has 2 empty values" in message
    assert "row 1 nan, row 2 '  '" in message
    assert "line" not in message  # not a CSV source: DataFrame rows only


def test_empty_title_is_an_error_but_empty_description_is_not():
    with pytest.raises(SchemaError) as error:
        validate_items(_items(title=["Alpha", np.nan, ""], description=[None, "", "x"]))
    message = str(error.value)
    assert "items: column 'title' has 2 empty values (first rows: row 1 nan, row 2 '')" in message
    assert "description" not in message


def test_list_and_dict_cells_are_wrong_types():
    with pytest.raises(SchemaError) as error:
        validate_items(_items(title=["ok", ["a", "b"], {"k": 1}]), source="items.csv")
    message = str(error.value)
    assert "items.csv: column 'title' has 2 values of the wrong type" in message
    assert "line 3 (row 1) ['a', 'b'], line 4 (row 2) {'k': 1}" in message
    assert "got dict, list" in message


def test_unparseable_published_at_names_rows():
    with pytest.raises(SchemaError) as error:
        validate_items(_items(published_at=["2024-01-01", "soon", None]))
    assert "items: column 'published_at' has 1 unparseable value (first rows: row 1 'soon')" in str(
        error.value
    )


def test_at_most_five_rows_are_reported_and_all_problems_at_once():
    raw = _items(
        item_id=[None] * 7, title=["t"] * 7, description=[""] * 7, published_at=["x"] * 7
    )
    with pytest.raises(SchemaError) as error:
        validate_items(raw)
    lines = str(error.value).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("items: column 'item_id' has 7 empty values")
    assert "row 4 None)" in lines[0] and "row 5" not in lines[0]
    assert lines[1].startswith("items: column 'published_at' has 7 unparseable values")


# ---- validate_interactions --------------------------------------------------------------------


def test_validate_interactions_normalises_every_column_and_keeps_order():
    raw = pd.DataFrame(
        {
            "user_id": [7, "u2 ", "u1", "u1"],
            "item_id": ["b", "a", 12, "a"],
            "timestamp": [
                1_700_000_000,
                "2024-01-05T10:00:00+02:00",
                datetime.datetime(2024, 1, 1, 12),
                "1700000000.5",
            ],
            "rating": ["4.5", None, 3, ""],
            "label": [True, "0", 1.0, "false"],
            "user_text": [" space please ", np.nan, None, 3],
        },
        index=[3, 1, 2, 0],
    )
    events = validate_interactions(raw)
    assert events.index.tolist() == [3, 1, 2, 0]
    assert events["user_id"].tolist() == ["7", "u2", "u1", "u1"]
    assert events["item_id"].tolist() == ["b", "a", "12", "a"]
    assert str(events["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert events["timestamp"].tolist() == [
        pd.Timestamp(1_700_000_000, unit="s", tz="UTC"),
        pd.Timestamp("2024-01-05 08:00", tz="UTC"),
        pd.Timestamp("2024-01-01 12:00", tz="UTC"),
        pd.Timestamp(1_700_000_000_500_000_000, unit="ns", tz="UTC"),
    ]
    np.testing.assert_array_equal(events["rating"].to_numpy(), [4.5, np.nan, 3.0, np.nan])
    assert events["label"].tolist() == [1, 0, 1, 0]
    assert events["user_text"].tolist() == ["space please", "", "", "3"]


def test_datetime_column_is_converted_to_utc_nanoseconds():
    times = pd.Series(pd.to_datetime(["2024-01-01 10:00", "2024-01-02 10:00"])).dt.tz_localize(
        "Europe/Paris"
    )
    events = validate_interactions(_events(timestamp=[*times, times[0]]))
    assert str(events["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert events["timestamp"].iloc[0] == pd.Timestamp("2024-01-01 09:00", tz="UTC")


def test_missing_interaction_columns():
    with pytest.raises(SchemaError) as error:
        validate_interactions(_events().drop(columns=["timestamp"]), source="log.csv")
    message = str(error.value)
    assert message.startswith("log.csv: missing required column 'timestamp'")
    assert "found columns: 'user_id', 'item_id'" in message


def test_unparseable_and_empty_timestamps_name_lines_and_values():
    with pytest.raises(SchemaError) as error:
        validate_interactions(
            _events(timestamp=["yesterday", None, 1_700_000_000_000]), source="log.csv"
        )
    message = str(error.value)
    assert (
        "log.csv: column 'timestamp' has 2 unparseable values "
        "(first rows: line 2 (row 0) 'yesterday', line 4 (row 2) 1700000000000)"
    ) in message
    assert "not milliseconds" in message
    assert "log.csv: column 'timestamp' has 1 empty value (first rows: line 3 (row 1) None)" in (
        message
    )


def test_empty_user_ids_non_numeric_rating_and_bad_labels():
    raw = _events(user_id=["u1", "", "u2"], rating=[1, "five", None], label=[0, 2, True])
    with pytest.raises(SchemaError) as error:
        validate_interactions(raw)
    message = str(error.value)
    assert "interactions: column 'user_id' has 1 empty value (first rows: row 1 '')" in message
    assert "interactions: column 'rating' has 1 non-numeric value (first rows: row 1 'five')" in (
        message
    )
    assert "interactions: column 'label' has 1 invalid value (first rows: row 1 2)" in message


def test_unknown_items_are_named_with_rows():
    raw = _events(item_id=["a", "zz", "yy"])
    with pytest.raises(SchemaError) as error:
        validate_interactions(raw, items=_items(), source="log.csv")
    message = str(error.value)
    assert "log.csv: column 'item_id' has 2 values not in the item catalog" in message
    assert "line 3 (row 1) 'zz', line 4 (row 2) 'yy'" in message
    assert "unknown item ids: 'zz', 'yy'" in message


def test_known_items_match_after_normalisation():
    items = _items(item_id=["12", 13, "x"])
    events = validate_interactions(_events(item_id=[12, "12", " 12"]), items=items)
    assert events["item_id"].tolist() == ["12", "12", "12"]


def test_require_validated_interactions_points_to_validation():
    with pytest.raises(SchemaError, match=r"'timestamp' has dtype int64.*validate_interactions"):
        require_validated_interactions(_events())
    require_validated_interactions(validate_interactions(_events()))


# ---- load_items / load_interactions -----------------------------------------------------------


def test_load_csv_keeps_ids_and_literal_texts(tmp_path):
    path = tmp_path / "items.csv"
    path.write_text("item_id,title,description\n007,None,NA\n12,1984,\n")
    items = load_items(path)
    assert items["item_id"].tolist() == ["007", "12"]
    assert items["title"].tolist() == ["None", "1984"]
    assert items["description"].tolist() == ["NA", ""]
    log = tmp_path / "log.csv"
    log.write_text("user_id,item_id,timestamp,rating\nu1,007,1700000000,4\nu1,12,2024-01-01,\n")
    events = load_interactions(log, items)
    assert events["item_id"].tolist() == ["007", "12"]
    assert events["timestamp"].iloc[1] == pd.Timestamp("2024-01-01", tz="UTC")
    np.testing.assert_array_equal(events["rating"].to_numpy(), [4.0, np.nan])


def test_load_csv_errors_name_the_file_and_line(tmp_path):
    path = tmp_path / "items.csv"
    path.write_text("item_id,title,description\na,A,\nb,,x\n")
    with pytest.raises(SchemaError) as error:
        load_items(path)
    assert str(error.value).startswith(
        f"{path}: column 'title' has 1 empty value (first rows: line 3 (row 1) '')"
    )


def test_load_parquet(tmp_path):
    pytest.importorskip("pyarrow")
    path = tmp_path / "items.parquet"
    _items(item_id=[1, 2, 3]).to_parquet(path)
    assert load_items(path)["item_id"].tolist() == ["1", "2", "3"]
    log = tmp_path / "log.parquet"
    _events(item_id=["1", "2", "1"]).to_parquet(log)
    events = load_interactions(log, load_items(path))
    assert str(events["timestamp"].dtype) == "datetime64[ns, UTC]"


def test_missing_file(tmp_path):
    with pytest.raises(SchemaError, match=r"items\.csv: file not found; expected the item catalog"):
        load_items(tmp_path / "items.csv")


def test_garbled_and_empty_csv(tmp_path):
    garbled = tmp_path / "log.csv"
    garbled.write_bytes(b"user_id,item_id,timestamp\n\xff\xfe\x00\x81,\x9c\n")
    with pytest.raises(SchemaError, match=r"log\.csv: cannot read as a UTF-8 CSV.*user_id"):
        load_interactions(garbled)
    empty = tmp_path / "items.csv"
    empty.write_text("")
    with pytest.raises(SchemaError, match=r"items\.csv: cannot read as a UTF-8 CSV"):
        load_items(empty)


def test_garbled_parquet(tmp_path):
    pytest.importorskip("pyarrow")
    path = tmp_path / "items.parquet"
    path.write_bytes(b"not a parquet file")
    with pytest.raises(SchemaError, match=r"items\.parquet: cannot read parquet"):
        load_items(path)


def test_unknown_extension(tmp_path):
    path = tmp_path / "items.json"
    path.write_text("{}")
    with pytest.raises(SchemaError, match=r"items\.json: unsupported file type '\.json'; expected"):
        load_items(path)
