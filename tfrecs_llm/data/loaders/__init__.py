"""Loaders of public dataset formats: each returns validated ``(items, interactions)``.

Malformed upstream files (missing columns or keys, invalid UTF-8, truncated lines, wrong field
counts, invalid JSON) raise `SchemaError` naming the file, the line and what is expected.
"""

from tfrecs_llm.data.loaders.amazon import load_amazon_reviews
from tfrecs_llm.data.loaders.generic import load_generic
from tfrecs_llm.data.loaders.movielens import load_movielens_100k, load_movielens_csv

__all__ = [
    "load_amazon_reviews",
    "load_generic",
    "load_movielens_100k",
    "load_movielens_csv",
]
