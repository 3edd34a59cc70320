"""The local server's query-embedding cache: LRU order, and the same answers as without it."""

from __future__ import annotations

import numpy as np
import pytest

from tests.unit.test_model_manager import exported_tiny_model
from tfrecs_llm.serving.loaded_version import LoadedVersion
from tfrecs_llm.serving.model_manager import ModelManager
from tfrecs_llm.serving.query_cache import QueryEmbeddingCache

TEXTS = np.array(["space rocket planet", "pasta sauce cooking", "space rocket planet", ""], dtype=object)


def test_least_recently_used_text_is_evicted() -> None:
    cache = QueryEmbeddingCache(capacity=2)
    cache.put([b"a", b"b"], np.eye(2, dtype=np.float32))
    assert cache.get([b"a"])[0].tolist() == [1.0, 0.0]  # "a" is now the most recent
    cache.put([b"c"], np.ones((1, 2), np.float32))
    assert [e is not None for e in cache.get([b"a", b"b", b"c"])] == [True, False, True]
    assert (cache.hits, cache.misses, len(cache)) == (3, 1, 2)


def test_bad_cache_size_is_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="query_cache_size must be >= 0"):
        ModelManager(tmp_path, "tiny", query_cache_size=-1)


def test_cached_answers_match_uncached_ones_and_repeats_skip_bert() -> None:
    model = LoadedVersion("tiny", 1, exported_tiny_model(), query_cache_size=16)
    cache = model.query_cache
    assert LoadedVersion("tiny", 1, exported_tiny_model()).query_cache is None  # size 0: off
    embedded: list[int] = []
    embed = cache._embed
    cache._embed = lambda user_text: embedded.append(len(user_text)) or embed(user_text=user_text)

    def run(signature: str, inputs: dict, cached: bool) -> dict:
        model.query_cache = cache if cached else None
        return model.run(signature, inputs)

    full = {
        "user_text": TEXTS,
        "exclude_item_ids": np.array([["space-1", ""], ["", ""], ["space-2", "space-3"], ["", ""]], dtype=object),
        "history_item_ids": np.array([["space-4"], ["cooking-1"], [""], [""]], dtype=object),
        "diversity": np.array([0.0, 0.5, 1.0, 0.2], np.float32),
    }
    requests = {
        "serving_default": {"user_text": TEXTS},
        "recommend_with_exclusions": {key: full[key] for key in ("user_text", "exclude_item_ids")},
        "recommend": full,
    }
    for signature, inputs in requests.items():
        want, got = run(signature, inputs, cached=False), run(signature, inputs, cached=True)
        np.testing.assert_array_equal(got["item_ids"], want["item_ids"])
        np.testing.assert_array_equal(got["reasons"], want["reasons"])
        np.testing.assert_allclose(got["scores"], want["scores"], atol=1e-5)
    np.testing.assert_allclose(
        run("embed_query", {"user_text": TEXTS}, cached=True)["embeddings"],
        run("embed_query", {"user_text": TEXTS}, cached=False)["embeddings"],
        atol=1e-5,
    )
    # BERT ran once, on the three distinct texts; every later request was answered from the cache.
    assert embedded == [3]
    assert cache.cache.misses == 4 and cache.cache.hits == 4 * len(TEXTS) - 4
