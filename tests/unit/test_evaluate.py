"""``tfrecs_llm.evaluate`` and ``tfrecs-llm evaluate``: model vs baselines, report files, errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.conftest import make_tiny_encoder
from tests.unit.tiny_data import tiny_interactions, tiny_items
from tfrecs_llm import EvaluationConfig, evaluate
from tfrecs_llm.recommender import Recommender
from tfrecs_llm.cli import main
from tfrecs_llm.config import Config
from tfrecs_llm.data.schema import validate_interactions, validate_items
from tfrecs_llm.data.splits import leave_last_out

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FAST = EvaluationConfig(bootstrap_resamples=200)


@pytest.fixture(scope="module")
def tables():
    """The tiny topics plus one user whose last event is an item nobody trained on."""
    cold_item = {"item_id": "space-cold", "title": "planet rocket cold", "description": "a space story",
                 "category": "space"}
    items = validate_items(pd.concat([tiny_items(), pd.DataFrame([cold_item])], ignore_index=True))
    extra = pd.DataFrame({"user_id": ["ucold"] * 3, "item_id": ["space-0", "space-1", "space-cold"],
                          "timestamp": [1_700_000_000, 1_700_000_100, 1_700_000_200]})
    events = validate_interactions(pd.concat([tiny_interactions(), extra], ignore_index=True), items)
    return items, events


@pytest.fixture(scope="module")
def saved_model(tables, tmp_path_factory):
    """A tiny model trained on the train part, saved with its tiny BERT as a local preset (so the
    CLI loads it like any other model)."""
    items, events = tables
    root = tmp_path_factory.mktemp("evaluate")
    encoder = make_tiny_encoder()
    encoder.backbone.save_to_preset(str(root / "tiny_bert"))
    encoder.tokenizer.save_to_preset(str(root / "tiny_bert"))
    config = Config().with_overrides({
        "train.epochs": 2, "train.batch_size": 32, "encoder.sequence_length": 32,
        "encoder.preset": str(root / "tiny_bert"),
    })
    train, _ = leave_last_out(events)
    recommender = Recommender.train(items, train, config, encoder=encoder, verbose=False)
    return recommender, recommender.save(root / "model")


def test_model_and_baselines_get_intervals_list_metrics_and_a_cold_slice(tables, saved_model, tmp_path) -> None:
    items, events = tables
    recommender, _ = saved_model
    report = evaluate(recommender, items, events, output_dir=tmp_path, config=FAST, verbose=False)

    assert list(report.results) == ["model", "popularity", "id_only", "tfidf", "zero_shot", "ease", "item_knn"]
    # The tuned baselines chose on the validation split, from their grids.
    tuned = report.protocol["tuned_on_validation"]
    assert float(tuned["ease"]["lambda"]) in FAST.ease.lambdas
    assert int(tuned["item_knn"]["neighbours"]) in FAST.item_knn.neighbours
    train, test = leave_last_out(events)
    assert report.protocol["num_queries"] == len(test) == 61
    assert report.protocol["num_cold_start_queries"] == 1
    cold = report.queries[report.queries["cold_start"]]
    assert cold[["user_id", "item_id"]].values.tolist() == [["ucold", "space-cold"]]
    for name, result in report.results.items():
        per_query = report.per_query(name)
        for metric, values in per_query.items():
            assert result.metrics[metric] == pytest.approx(values.mean())
            low, high = result.intervals[metric]
            assert low <= result.metrics[metric] <= high, (name, metric)
            assert result.cold_start[metric] == pytest.approx(values[report.queries["cold_start"]].mean())
        assert {"catalog_coverage@10", "ild@10", "category_entropy@10"} <= set(result.metrics)
    # The same protocol as Recommender.evaluate, which ranks identically.
    direct = recommender.evaluate(train, test)["model"]
    assert report["model"].metrics["recall@10"] == pytest.approx(direct["recall@10"])
    assert report["model"].metrics["mrr"] > report["popularity"].metrics["mrr"]

    saved = json.loads((tmp_path / "report.json").read_text())
    assert set(saved["models"]) == set(report.results)
    assert saved["models"]["tfidf"]["intervals"]["recall@10"] == list(report["tfidf"].intervals["recall@10"])
    ranks = pd.read_csv(tmp_path / "ranks.csv")
    assert len(ranks) == 61 and ranks["rank:id_only"].tolist() == report["id_only"].ranks.tolist()
    for chart in ("ranking_metrics.png", "list_metrics.png", "cold_start.png"):
        assert (tmp_path / chart).read_bytes()[:8] == PNG_MAGIC


def test_zero_shot_is_the_same_from_a_given_encoder_and_from_a_frozen_models_cache(tables, saved_model) -> None:
    items, events = tables
    shared = evaluate(saved_model[0], items, events, baselines=["zero_shot"], config=FAST, verbose=False)
    alone = evaluate(None, items, events, baselines=["zero_shot"], config=FAST, encoder=make_tiny_encoder(),
                     verbose=False)
    assert list(alone.results) == ["zero_shot"]
    np.testing.assert_array_equal(alone["zero_shot"].ranks, shared["zero_shot"].ranks)
    assert alone["zero_shot"].metrics == pytest.approx(shared["zero_shot"].metrics, abs=1e-6)


def test_a_model_missing_evaluation_items_is_rejected(tables, saved_model) -> None:
    items, events = tables
    extra = pd.DataFrame([{"item_id": "new", "title": "new", "description": "", "category": ""}])
    with pytest.raises(ValueError, match=r"the model's catalog lacks 1 of the 26 evaluation items \(e.g. 'new'\)"):
        evaluate(saved_model[0], pd.concat([items, extra]), events, baselines=(), verbose=False)


def test_cli_writes_the_report_and_charts(tables, saved_model, tmp_path, capsys) -> None:
    items, events = tables
    items.to_csv(tmp_path / "items.csv", index=False)
    events.to_csv(tmp_path / "events.csv", index=False)
    code = main(["evaluate", "--model", str(saved_model[1]), "--items", str(tmp_path / "items.csv"),
                 "--interactions", str(tmp_path / "events.csv"), "--baselines", "popularity", "tfidf",
                 "--output", str(tmp_path / "out"), "--set", "bootstrap_resamples=100", "--set", "ks=[5,20]",
                 "--quiet"])
    assert code == 0
    table = capsys.readouterr().out
    assert "recall@5" in table and "popularity" in table and "tfidf" in table
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert list(report["models"]) == ["model", "popularity", "tfidf"]
    assert report["protocol"]["ks"] == [5, 20] and report["protocol"]["bootstrap_resamples"] == 100
    assert (tmp_path / "out" / "ranking_metrics.png").read_bytes()[:8] == PNG_MAGIC


def test_cli_rejects_bad_input_with_one_paragraph(tables, tmp_path, capsys) -> None:
    items, events = tables
    items.to_csv(tmp_path / "items.csv", index=False)
    single = events.groupby("user_id").head(1)
    single.to_csv(tmp_path / "single.csv", index=False)
    data = ["--items", str(tmp_path / "items.csv"), "--interactions", str(tmp_path / "single.csv")]
    cases = [
        (["evaluate"], "either --sample or both --items and --interactions"),
        (["evaluate", "--sample", "--items", "x.csv"], "either --sample or both"),
        (["evaluate", "--items", str(tmp_path / "items.csv")], "both --items and --interactions"),
        (["evaluate", "--sample", "--model", str(tmp_path)], "is not a saved tfrecs_llm model"),
        (["evaluate", "--sample", "--baselines"], "nothing to evaluate"),
        (["evaluate", "--sample", "--set", "id_only.epoch=3"], "unknown evaluation setting 'id_only.epoch'"),
        (["evaluate", "--sample", "--set", "top_k=ten"], "top_k must be an integer, got 'ten'"),
        (["evaluate", "--items", str(tmp_path / "nope.csv"), "--interactions", "x.csv"], "nope.csv"),
        (["evaluate", *data, "--baselines", "popularity"], "leave-last-out holds nothing out"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (argv, err)
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--sample", "--baselines", "random"])
    assert exit_info.value.code == 2


def test_settings_override_and_validate() -> None:
    config = EvaluationConfig().with_overrides({"id_only.epochs": 3, "ks": 20, "confidence": 0.9})
    assert (config.id_only.epochs, config.ks, config.confidence) == (3, [20], 0.9)
    with pytest.raises(ValueError, match="confidence must be strictly between 0 and 1"):
        EvaluationConfig().with_overrides({"confidence": 95})
    with pytest.raises(ValueError, match=r"id_only.epochs must be > 0"):
        EvaluationConfig().with_overrides({"id_only.epochs": 0})
    with pytest.raises(ValueError, match="unknown evaluation setting 'id_only'"):
        EvaluationConfig().with_overrides({"id_only": 3})
    assert np.isclose(EvaluationConfig().with_overrides({"confidence": 1 / 2}).confidence, 0.5)
