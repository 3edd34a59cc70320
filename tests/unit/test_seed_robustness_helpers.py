"""The rank fusion the seed-robustness benchmark measures (benchmarks/seed_robustness.py)."""

import numpy as np
import pandas as pd

from benchmarks.seed_robustness import catalog_ranks, rank_fusion


def test_catalog_ranks_are_positions_in_descending_score_order() -> None:
    scores = np.array([[0.3, 0.9, 0.1, 0.5], [2.0, -1.0, 7.0, 0.0]])
    np.testing.assert_array_equal(catalog_ranks(scores), [[2, 0, 3, 1], [1, 3, 0, 2]])


def test_fusion_prefers_what_both_rank_high_over_what_one_ranks_first_and_the_other_last() -> None:
    order = np.arange(10, 0, -1, dtype=float)                  # first: item i at rank i
    reverse = order[::-1].copy()                                 # second: item 9 first, item 0 last ...
    reverse[[1, 8]] = reverse[[8, 1]]                            # ... except item 1, second by both
    first, second = (lambda queries: order[None]), (lambda queries: reverse[None])
    queries = pd.DataFrame({"user_id": ["u"]})
    np.testing.assert_array_equal(catalog_ranks(second(queries))[0, [0, 1, 9]], [9, 1, 0])
    assert rank_fusion(first, second, weight=1.0)(queries)[0].argmax() == 1
    # With the second model weighted near zero, the first model's order comes back.
    assert list(np.argsort(-rank_fusion(first, second, weight=1e-6)(queries)[0])) == list(range(10))
