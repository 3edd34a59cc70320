"""MovieLens (GroupLens): the 100K release and the CSV releases (latest, latest-small, 25M, 32M).

Items get a short readable description built from genres and dates, e.g. "Animation,
Children's, Comedy film released 01-Jan-1995."; the item text the towers read starts with the
title (`item_text.item_texts`), so the title is not repeated in the description. Interactions
keep the rating files' row order.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from tfrecs_llm.data.loaders.generic import (
    earlier_user_texts,
    lines_source,
    read_delimited,
)
from tfrecs_llm.data.schema import SchemaError, validate_interactions, validate_items

# Placeholders rather than genres: they give no category, tag or description word.
_NOT_GENRES = frozenset({"unknown", "(no genres listed)"})
_100K_ITEM_FIELDS = ("movie id", "movie title", "release date", "video release date", "IMDb URL")
_100K_RATING_FIELDS = ("user id", "item id", "rating", "timestamp")
_100K_DATE_FORMAT = "%d-%b-%Y"  # 01-Jan-1995
_TITLE_YEAR = r"\((\d{4})\)\s*$"  # "Toy Story (1995)"


def load_movielens_100k(directory: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Loads ``u.genre``, ``u.item`` and ``u.data`` of MovieLens 100K (``ml-100k/``).

    Items: ``item_id`` = movie id, ``title`` as in ``u.item`` (with its year), ``description``
    = "<genres> film released <date>.", ``category`` = first genre, ``tags`` = genres joined by
    "|", ``published_at`` = release date (NaT when blank). The genre "unknown" counts as none.
    Interactions: ``user_id``, ``item_id``, ``timestamp`` (unix seconds), ``rating``, in file
    order. ``u.user`` (age, gender, occupation, zip) is not read: it is not text the user wrote.

    Raises:
        SchemaError: naming the file and line, e.g. a wrong number of fields, a genre flag other
            than 0/1, a release date not like 01-Jan-1995, or a rating of an unknown movie.
    """
    directory = Path(directory)
    genres = _read_100k_genres(directory / "u.genre")
    item_path = directory / "u.item"
    movies = read_delimited(
        item_path,
        columns=_100K_ITEM_FIELDS + genres,
        header=False,
        delimiter="|",
        encoding="latin-1",
        quoting=csv.QUOTE_NONE,
        what=f"MovieLens 100K u.item: {' | '.join(_100K_ITEM_FIELDS)} | {len(genres)} genre flags",
    )
    movie_genres = _100k_genres_per_movie(movies, genres, item_path)
    dates = movies["release date"].str.strip()
    raw_items = _movie_table(
        movies["movie id"],
        movies["movie title"],
        movie_genres,
        [f"released {date}" if date else "" for date in dates],
    ).assign(published_at=_release_dates(dates, item_path))
    items = validate_items(raw_items, source=lines_source(item_path))
    data_path = directory / "u.data"
    ratings = read_delimited(
        data_path,
        columns=_100K_RATING_FIELDS,
        header=False,
        delimiter="\t",
        encoding="latin-1",
        quoting=csv.QUOTE_NONE,
        what="MovieLens 100K u.data: user id, item id, rating, unix timestamp",
    )
    ratings.columns = ["user_id", "item_id", "rating", "timestamp"]
    interactions = validate_interactions(
        ratings[["user_id", "item_id", "timestamp", "rating"]],
        items=items,
        source=lines_source(data_path),
    )
    return items.reset_index(drop=True), interactions.reset_index(drop=True)


def load_movielens_csv(directory: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Loads ``movies.csv``, ``ratings.csv`` and, if present, ``tags.csv`` (UTF-8, with headers).

    Items: ``item_id`` = movieId, ``title`` as given (with its year), ``description`` = "<genres>
    film from <year>." (year from the title), ``category`` = first genre, ``tags`` = genres
    joined by "|"; "(no genres listed)" counts as none. Interactions: the ratings in file order,
    with ``user_text``.

    Tags as user text: a tag is a statement of the user, so the tags a user wrote on a movie
    are joined (", ", file order) and attached to the user's rating of that movie (tags without
    such a rating are ignored). A tag describes the movie it is on ("pixar" on Toy Story), so, as
    for Amazon reviews, it is only user text for the user's LATER ratings: each rating's
    ``user_text`` holds the tags of the user's most recent earlier tagged rating
    (`earlier_user_texts`), "" before the first. Tag timestamps are not used: the rating anchors
    when the user said it. Without ``tags.csv`` every ``user_text`` is "".

    Raises:
        SchemaError: naming the file and line, e.g. a missing header column, invalid UTF-8 (with
            the byte offset), a truncated line or a rating of an unknown movie.
    """
    directory = Path(directory)
    movies_path = directory / "movies.csv"
    movies = read_delimited(
        movies_path,
        columns=("movieId", "title", "genres"),
        what="MovieLens movies.csv with header movieId,title,genres",
    )
    movie_genres = [_genre_list(cell.split("|")) for cell in movies["genres"]]
    years = movies["title"].str.extract(_TITLE_YEAR, expand=False).fillna("")
    raw_items = _movie_table(
        movies["movieId"], movies["title"], movie_genres, [f"from {y}" if y else "" for y in years]
    )
    items = validate_items(raw_items, source=lines_source(movies_path))
    ratings_path = directory / "ratings.csv"
    ratings = read_delimited(
        ratings_path,
        columns=("userId", "movieId", "rating", "timestamp"),
        what="MovieLens ratings.csv with header userId,movieId,rating,timestamp",
    )
    ratings = ratings.rename(columns={"userId": "user_id", "movieId": "item_id"})
    interactions = validate_interactions(
        ratings[["user_id", "item_id", "timestamp", "rating"]],
        items=items,
        source=lines_source(ratings_path),
    )
    statements = _tags_per_rating(directory / "tags.csv", interactions)
    interactions["user_text"] = earlier_user_texts(interactions, statements)
    return items.reset_index(drop=True), interactions.reset_index(drop=True)


def _read_100k_genres(path: Path) -> tuple[str, ...]:
    """Genre names in flag order from ``u.genre`` lines ``name|index`` (index 0, 1, 2, ...)."""
    table = read_delimited(
        path,
        columns=("genre", "index"),
        header=False,
        delimiter="|",
        encoding="latin-1",
        quoting=csv.QUOTE_NONE,
        what="MovieLens 100K u.genre: genre|index",
    )
    for position, (line, index) in enumerate(zip(table.index, table["index"].str.strip())):
        if index != str(position):
            raise SchemaError(
                f"{path} line {line}: genre index {index!r}; expected {position} "
                "(u.genre lists genre|index with indexes 0, 1, 2, ... in order)"
            )
    return tuple(table["genre"].str.strip())


def _100k_genres_per_movie(
    movies: pd.DataFrame, genres: Sequence[str], path: Path
) -> list[list[str]]:
    flags = movies[list(genres)].apply(lambda column: column.str.strip())
    bad = ~flags.isin(["0", "1"])
    if bad.to_numpy().any():
        line = bad.index[bad.any(axis=1)][0]
        genre = bad.columns[bad.loc[line].to_numpy()][0]
        raise SchemaError(
            f"{path} line {line}: genre flag {genre!r} is {flags.at[line, genre]!r}; "
            f"expected 0 or 1 (the last {len(genres)} fields of u.item are genre flags)"
        )
    return [
        _genre_list(name for name, flag in zip(genres, row) if flag == "1")
        for row in flags.itertuples(index=False)
    ]


def _release_dates(dates: pd.Series, path: Path) -> pd.Series:
    parsed = pd.to_datetime(dates, format=_100K_DATE_FORMAT, errors="coerce", utc=True)
    bad = (dates != "") & parsed.isna()
    if bad.any():
        line = bad.index[bad.to_numpy()][0]
        raise SchemaError(
            f"{path} line {line}: release date {dates[line]!r}; expected a date like "
            "01-Jan-1995 (day-month abbreviation-year) or an empty field"
        )
    return parsed


def _tags_per_rating(path: Path, interactions: pd.DataFrame) -> list[str]:
    """Per rating: the user's tags on that movie joined by ", " ("" without tags or tags.csv)."""
    if not path.is_file():
        return [""] * len(interactions)
    tags = read_delimited(
        path,
        columns=("userId", "movieId", "tag", "timestamp"),
        what="MovieLens tags.csv with header userId,movieId,tag,timestamp",
    )
    written: dict[tuple[str, str], list[str]] = {}
    for user, movie, tag in zip(tags["userId"], tags["movieId"], tags["tag"]):
        if tag.strip():
            written.setdefault((user.strip(), movie.strip()), []).append(" ".join(tag.split()))
    pairs = zip(interactions["user_id"], interactions["item_id"])
    return [", ".join(written.get(pair, ())) for pair in pairs]


def _genre_list(names: Iterable[str]) -> list[str]:
    """Stripped genre names without blanks and placeholders such as "(no genres listed)"."""
    return [name for name in (n.strip() for n in names) if name and name not in _NOT_GENRES]


def _movie_table(
    ids: pd.Series, titles: pd.Series, movie_genres: list[list[str]], when: list[str]
) -> pd.DataFrame:
    """Items table of movies: description from genres and ``when`` ("released ..."), category =
    first genre, tags = all genres joined by "|"."""
    return pd.DataFrame(
        {
            "item_id": ids,
            "title": titles,
            "description": [_film_sentence(names, w) for names, w in zip(movie_genres, when)],
            "category": [names[0] if names else "" for names in movie_genres],
            "tags": ["|".join(names) for names in movie_genres],
        },
        index=ids.index,
    )


def _film_sentence(genres: Sequence[str], when: str) -> str:
    """E.g. "Animation, Comedy film released 01-Jan-1995.", "Film from 1995." or "Film."."""
    kind = f"{', '.join(genres)} film" if genres else "Film"
    return f"{kind} {when}." if when else f"{kind}."
