"""``tfrecs-llm evaluate`` on the bundled sample with the real MiniLM (baselines that need no
training, so it stays short): the report, the charts, and text beating popularity."""

from __future__ import annotations

import json

import pytest

from tfrecs_llm.cli import main

pytestmark = pytest.mark.integration


def test_tfidf_beats_popularity_on_the_sample(tmp_path, capsys) -> None:
    code = main(["evaluate", "--sample", "--baselines", "popularity", "tfidf", "--output", str(tmp_path),
                 "--set", "bootstrap_resamples=300", "--quiet"])
    assert code == 0, capsys.readouterr().err[-2000:]
    report = json.loads((tmp_path / "report.json").read_text())
    protocol, models = report["protocol"], report["models"]
    assert protocol["num_queries"] == 1200 and protocol["num_items"] == 701
    assert "all-minilm-l6-v2" in protocol["ild_embeddings"]
    # The sample's user texts name what users like: word overlap alone beats popularity, with
    # non-overlapping 95% intervals over the 1200 held-out events.
    assert models["tfidf"]["intervals"]["recall@10"][0] > models["popularity"]["intervals"]["recall@10"][1]
    # Popularity repeats the same few items to everyone.
    coverage = {name: models[name]["metrics"]["catalog_coverage@10"] for name in models}
    assert coverage["popularity"] < 0.05 < coverage["tfidf"]
    assert {"ild@10", "category_entropy@10"} <= set(models["tfidf"]["metrics"])
    for chart in ("ranking_metrics.png", "list_metrics.png"):
        assert (tmp_path / chart).stat().st_size > 10_000
