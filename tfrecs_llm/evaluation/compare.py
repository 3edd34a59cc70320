"""``tfrecs_llm.evaluate``: a trained model and baselines under one held-out protocol.

Protocol: temporal leave-last-out (each user's last event is a test event, users with a single
event stay in train); each test event's item is ranked among ALL catalog items, the user's train
items excluded; per-query Recall@k, NDCG@k and MRR with percentile-bootstrap intervals over
queries; catalog coverage, ILD (on pretrained item-text embeddings, the same space for every
model) and category entropy of the top-k lists; and the same ranking metrics on the cold-start
slice: test events whose item has no train event.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from tfrecs_llm.config import Config, DataConfig, EncoderConfig
from tfrecs_llm.data.item_text import item_texts
from tfrecs_llm.data.schema import load_interactions, load_items, validate_interactions, validate_items
from tfrecs_llm.data.splits import leave_last_out
from tfrecs_llm.data.user_text import UserTextBuilder
from tfrecs_llm.evaluation.baselines import BASELINE_NAMES, DEFAULT_BASELINES
from tfrecs_llm.evaluation.baselines.ease import EaseConfig, ease_scorer
from tfrecs_llm.evaluation.baselines.id_only import IdOnlyConfig, id_only_scorer
from tfrecs_llm.evaluation.baselines.item_knn import ItemKnnConfig, item_knn_scorer
from tfrecs_llm.evaluation.baselines.sasrec import SasRecConfig, sasrec_scorer
from tfrecs_llm.evaluation.baselines.popularity import popularity_scorer
from tfrecs_llm.evaluation.baselines.tfidf import TfIdfScorer
from tfrecs_llm.evaluation.baselines.zero_shot import ZeroShotScorer
from tfrecs_llm.evaluation.protocol import HeldOutSet, ScoreFn, beyond_accuracy, per_query_metrics, rank_held_out
from tfrecs_llm.evaluation.report import EvaluationReport, ModelResult
from tfrecs_llm.metrics.bootstrap import bootstrap_intervals
from tfrecs_llm.models.retriever import Retriever
from tfrecs_llm.text.encoder import TextEncoder, embed_texts
from tfrecs_llm.text.presets import load_encoder
from tfrecs_llm.training.persistence import load_model_dir
from tfrecs_llm.training.retrieval import train_two_tower
from tfrecs_llm.types import EmbedTexts, TableLike

ModelLike = Retriever | str | Path | Config | None


@dataclass
class EvaluationConfig:
    """Knobs of the evaluation protocol.

    ks: cut-offs of Recall@k and NDCG@k.
    top_k: length of the lists whose catalog coverage, ILD and category entropy are reported.
    bootstrap_resamples, confidence, seed: percentile-bootstrap intervals over queries.
    id_only, ease, item_knn, sasrec: hyper-parameters of those baselines (the last three tune
        on a validation split carved from the train part).
    """

    ks: list[int] = field(default_factory=lambda: [10, 100])
    top_k: int = 10
    bootstrap_resamples: int = 1000
    confidence: float = 0.95
    seed: int = 0
    id_only: IdOnlyConfig = field(default_factory=IdOnlyConfig)
    ease: EaseConfig = field(default_factory=EaseConfig)
    item_knn: ItemKnnConfig = field(default_factory=ItemKnnConfig)
    sasrec: SasRecConfig = field(default_factory=SasRecConfig)

    def validate(self) -> "EvaluationConfig":
        if not self.ks or any(not isinstance(k, int) or k < 1 for k in self.ks):
            raise ValueError(f"ks must be a non-empty list of integers >= 1, got {self.ks!r}")
        if self.top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {self.top_k}")
        if self.bootstrap_resamples < 1:
            raise ValueError(f"bootstrap_resamples must be >= 1, got {self.bootstrap_resamples}")
        if not 0.0 < self.confidence < 1.0:
            raise ValueError(f"confidence must be strictly between 0 and 1, got {self.confidence}")
        for section in _SECTIONS:
            getattr(self, section).validate()
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def with_overrides(self, overrides: Mapping[str, Any]) -> "EvaluationConfig":
        """A copy with ``{"top_k": 5, "id_only.epochs": 3, ...}`` applied and validated."""
        data = self.to_dict()
        for key, value in overrides.items():
            section, _, name = key.partition(".")
            target = data.get(section) if name else data
            name = name or key
            if not isinstance(target, dict) or name not in target or isinstance(target[name], dict):
                keys = [k for k in data if k not in _SECTIONS]
                keys += [f"{section}.{k}" for section in _SECTIONS for k in data[section]]
                raise ValueError(f"unknown evaluation setting {key!r}; expected one of {keys}")
            target[name] = _coerce(key, value, target[name])
        sections = {section: cls(**data[section]) for section, cls in _SECTIONS.items()}
        return EvaluationConfig(**{**data, **sections}).validate()


_SECTIONS = {"id_only": IdOnlyConfig, "ease": EaseConfig, "item_knn": ItemKnnConfig, "sasrec": SasRecConfig}


def _coerce(key: str, value: Any, default: Any) -> Any:
    """``value`` as the type of ``default`` (``--set`` values arrive as JSON or strings)."""
    if isinstance(default, list):
        items = value if isinstance(value, list) else [value]
        kind = float if default and isinstance(default[0], float) else int
        if not all(isinstance(v, (int, float) if kind is float else int) and not isinstance(v, bool) for v in items):
            raise ValueError(f"{key} must be a list of {kind.__name__}s such as {default[:2]}, got {value!r}")
        return [kind(v) for v in items]
    if isinstance(default, int) and not (isinstance(value, int) and not isinstance(value, bool)):
        raise ValueError(f"{key} must be an integer, got {value!r}")
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{key} must be a number, got {value!r}")
        return float(value)
    return value


def evaluate(
    model: ModelLike,
    items: TableLike,
    interactions: TableLike,
    baselines: Sequence[str] = DEFAULT_BASELINES,
    output_dir: str | Path | None = None,
    config: EvaluationConfig | None = None,
    encoder: TextEncoder | None = None,
    verbose: bool = True,
) -> EvaluationReport:
    """Evaluates ``model`` and ``baselines`` on held-out events; see the module docstring.

    ``interactions`` (all events) are split with ``leave_last_out`` here, and ``model`` must
    have been trained on the train part only (``tfrecs-llm train`` with its default
    ``--holdout last`` is), otherwise its numbers are inflated by test events it saw:

    - a :class:`~tfrecs_llm.Recommender` (or any trained ``Retriever``) or a directory written
      by ``Recommender.save`` / ``tfrecs-llm train --output`` (scored by its two-tower retrieval
      over the full catalog; a ranking head, if any, is not involved);
    - a :class:`Config`: trained here on the train part;
    - ``None``: baselines only.

    ``baselines``: any of ``popularity``, ``id_only``, ``tfidf``, ``zero_shot``, ``ease``,
    ``item_knn``, ``sasrec`` (the last three choose their hyper-parameters on each user's last
    train event, then fit on the whole train part; what they chose is in ``report.protocol``).
    ``encoder``: the pretrained encoder of ``zero_shot`` and of the item-text embeddings ILD is
    measured on (default: the model's ``encoder.preset``, else the bundled MiniLM).
    ``output_dir``: writes ``report.json``, ``ranks.csv`` and PNG charts there.

    Returns:
        An :class:`EvaluationReport`: per model, the metrics, their intervals, the cold-start
        slice and per-query ranks (``report["model"]``, ``report["popularity"]``, ...).

    Example::

        import tfrecs_llm
        items, events = tfrecs_llm.load_sample()
        report = tfrecs_llm.evaluate(tfrecs_llm.Config(), items, events, baselines=["popularity"])
        print(report.format_table())      # Recall@10/100, NDCG, MRR with 95% intervals
        report["model"].metrics["recall@10"]
    """
    config = (config or EvaluationConfig()).validate()
    baselines = _baseline_names(baselines)
    items_df = items if isinstance(items, pd.DataFrame) else load_items(items)
    items_df = validate_items(items_df).reset_index(drop=True)
    if isinstance(interactions, pd.DataFrame):
        events = validate_interactions(interactions, items_df)
    else:
        events = load_interactions(interactions, items_df)
    train, test = leave_last_out(events)
    if test.empty:
        raise ValueError(
            "interactions: no user has two or more events, so leave-last-out holds nothing out; "
            "evaluation needs users with a history and a later event"
        )
    if model is None and not baselines:
        raise ValueError("nothing to evaluate: pass a model and/or at least one baseline")
    item_ids = items_df["item_id"].to_numpy(dtype=str)
    texts = item_texts(items_df)

    recommender, model_source = _resolve_model(model, items_df, train, encoder, verbose)
    # Built first: a model that cannot score the catalog fails before any baseline work.
    model_scorer = recommender_scorer(recommender, item_ids) if recommender is not None else None
    data_config = recommender.config.data if recommender is not None else DataConfig()
    # The user text the text baselines read (free text and recent titles); a sequential model
    # reads each event's free text and the history instead.
    held_out = HeldOutSet.build(UserTextBuilder.from_config(items_df, data_config), item_ids, train, test)
    item_embeddings, embed_users, preset = _pretrained_space(recommender, items_df, texts, encoder, verbose)
    categories = items_df["category"].astype(str).tolist()

    builders: dict[str, Any] = {}
    if model_scorer is not None:
        builders["model"] = lambda: model_scorer
    factories = {
        "popularity": lambda: popularity_scorer(train, item_ids),
        "id_only": lambda: id_only_scorer(train, item_ids, config.id_only, verbose),
        "tfidf": lambda: TfIdfScorer(texts),
        "zero_shot": lambda: ZeroShotScorer(item_embeddings, embed_users),
        "ease": lambda: _tuned("ease", ease_scorer(train, item_ids, config.ease, verbose)),
        "item_knn": lambda: _tuned("item_knn", item_knn_scorer(train, item_ids, config.item_knn, verbose)),
        "sasrec": lambda: _tuned("sasrec", sasrec_scorer(train, item_ids, config.sasrec, verbose)),
    }
    chosen: dict[str, Any] = {}

    def _tuned(name: str, fitted: tuple[ScoreFn, dict]) -> ScoreFn:
        chosen[name] = fitted[1]
        return fitted[0]

    builders.update({name: factories[name] for name in baselines})
    results = {}
    for step, (name, build) in enumerate(builders.items(), 1):
        if verbose:
            print(f"[{step}/{len(builders)}] {name}: scoring {len(held_out)} held-out events "
                  f"against {len(item_ids)} items")
        start = time.perf_counter()
        score_fn = build()
        fitted = time.perf_counter()
        ranks, top_rows = rank_held_out(score_fn, held_out, config.top_k, verbose)
        seconds = {"fit": fitted - start, "score": time.perf_counter() - fitted}
        results[name] = _result(ranks, top_rows, held_out, item_embeddings, categories, config, seconds)

    protocol = {
        "split": "leave_last_out: each user's last event (by time, ties in file order) is held out; "
                 "users with a single event stay in train",
        "ranking": "full catalog, the user's train items excluded, ties counted against the target",
        "num_items": len(item_ids),
        "num_train_events": len(train),
        "num_queries": len(held_out),
        "num_cold_start_queries": int(held_out.cold_start.sum()),
        "ks": list(config.ks),
        "top_k": config.top_k,
        "confidence": config.confidence,
        "bootstrap_resamples": config.bootstrap_resamples,
        "seed": config.seed,
        "ild_embeddings": f"pretrained pooled item-text embeddings ({preset})",
        "model": model_source,
        "config": config.to_dict(),
        "tuned_on_validation": _jsonable(chosen),
    }
    report = EvaluationReport(protocol, held_out.queries[["user_id", "item_id", "cold_start"]], results)
    if verbose:
        print(report.format_table())
    if output_dir is not None:
        written = report.save(output_dir)
        if verbose:
            print("wrote " + ", ".join(str(path) for path in written))
    return report


def _jsonable(value: Any) -> Any:
    """``value`` with dict keys as strings (JSON objects need them)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def recommender_scorer(recommender: Retriever, item_ids: np.ndarray) -> ScoreFn:
    """The model's dot-product scores ``[n, len(item_ids)]``, columns in ``item_ids`` order."""
    rows = recommender.catalog.rows_of(item_ids)
    missing = np.isnan(rows.astype(float))
    if missing.any():
        examples = ", ".join(repr(str(i)) for i in np.asarray(item_ids)[missing][:5])
        raise ValueError(
            f"the model's catalog lacks {int(missing.sum())} of the {len(item_ids)} evaluation items "
            f"(e.g. {examples}); evaluate on the items it was trained with, or add the new ones "
            "with `tfrecs-llm add-items`"
        )
    item_embeddings = recommender.item_embeddings()[rows.astype(int)]

    def score(queries: pd.DataFrame) -> np.ndarray:
        texts = queries["free_text" if recommender.sequential else "user_text"].tolist()
        histories = queries["history_item_ids"].tolist()
        return recommender.query_embeddings(texts, history_item_ids=histories) @ item_embeddings.T

    return score


def _baseline_names(baselines: Sequence[str]) -> list[str]:
    names = [baselines] if isinstance(baselines, str) else list(baselines or [])
    unknown = [name for name in names if name not in BASELINE_NAMES]
    if unknown:
        raise ValueError(f"unknown baselines {unknown}; expected any of {list(BASELINE_NAMES)}")
    return list(dict.fromkeys(names))


def _resolve_model(
    model: ModelLike, items: pd.DataFrame, train: pd.DataFrame, encoder: TextEncoder | None, verbose: bool
) -> tuple[Retriever | None, str]:
    if model is None:
        return None, "none (baselines only)"
    if isinstance(model, Retriever):
        return model, f"a {type(model).__name__} passed in"
    if isinstance(model, Config):
        # Fine-tuning would change the encoder that zero-shot and ILD need as pretrained.
        train_encoder = encoder if model.encoder.trainable == "frozen" else None
        trained = train_two_tower(items, train, model.validate(), encoder=train_encoder, verbose=verbose)
        return trained, "trained here on the train part"
    if isinstance(model, (str, Path)):
        return load_model_dir(model)[0], str(model)
    raise TypeError(
        f"model must be a Recommender, a saved model directory, a Config or None, got {type(model).__name__}"
    )


def _pretrained_space(
    recommender: Retriever | None,
    items: pd.DataFrame,
    texts: list[str],
    encoder: TextEncoder | None,
    verbose: bool,
) -> tuple[np.ndarray, EmbedTexts, str]:
    """Pooled pretrained embeddings of the item texts ``[num_items, hidden_dim]``, a user-text
    embedder in the same space, and where the encoder came from."""
    whole_frozen = recommender is not None and recommender.config.encoder.trainable == "frozen" \
        and recommender.config.encoder.query_layers == 0
    if encoder is None and whole_frozen:
        # A frozen model's encoder (all of its layers) is the pretrained one, and its cache already holds the pooled
        # user-text embeddings the model was scored with: zero-shot reuses them, halving BERT time.
        cached = _catalog_text_embeddings(recommender, items, texts)
        if cached is None:
            cached = embed_texts(recommender.encoder, texts, verbose=verbose, description="embedding item texts")
        return cached, recommender.pooled_embeddings, recommender.config.encoder.preset
    preset = "the encoder passed in"
    if encoder is None:
        # The model's checkpoint and text length, none of its fine-tuning (LoRA, layers, dtype).
        model_section = recommender.config.encoder if recommender is not None else EncoderConfig()
        section = EncoderConfig(preset=model_section.preset, sequence_length=model_section.sequence_length)
        encoder, preset = load_encoder(section), section.preset
    item_embeddings = embed_texts(encoder, texts, verbose=verbose, description="embedding item texts")
    return item_embeddings, lambda batch: embed_texts(encoder, batch, verbose=False), preset


def _catalog_text_embeddings(
    recommender: Retriever, items: pd.DataFrame, texts: list[str]
) -> np.ndarray | None:
    """The model's cached pretrained item-text embeddings in ``items`` order, if it has them for
    exactly these texts."""
    embeddings = recommender.catalog.text_embeddings
    rows = recommender.catalog.rows_of(items["item_id"])
    if embeddings is None or np.isnan(rows.astype(float)).any():
        return None
    rows = rows.astype(int)
    if [recommender.catalog.texts[r] for r in rows] != texts:
        return None
    return embeddings[rows]


def _result(
    ranks: np.ndarray,
    top_rows: np.ndarray,
    held_out: HeldOutSet,
    item_embeddings: np.ndarray,
    categories: list[str],
    config: EvaluationConfig,
    seconds: dict[str, float],
) -> ModelResult:
    per_query = per_query_metrics(ranks, config.ks)
    bootstrap = dict(num_resamples=config.bootstrap_resamples, confidence=config.confidence, seed=config.seed)
    metrics = {name: float(values.mean()) for name, values in per_query.items()}
    metrics.update(beyond_accuracy(top_rows, held_out.num_items, item_embeddings, categories))
    result = ModelResult(ranks, metrics, bootstrap_intervals(per_query, **bootstrap), seconds=seconds)
    cold = held_out.cold_start
    if cold.any():
        sliced = {name: values[cold] for name, values in per_query.items()}
        result.cold_start = {name: float(values.mean()) for name, values in sliced.items()}
        result.cold_start_intervals = bootstrap_intervals(sliced, **bootstrap)
    return result
