"""Deterministic generator of the bundled sample dataset, and its reference baselines.

``python -m tfrecs_llm.data.sample.generate`` rewrites ``items.csv`` and ``interactions.csv``
next to this file (``--out-dir`` writes elsewhere, ``--seed`` changes the draw) and prints
:func:`baseline_report`. Only numpy, pandas and the standard library are used; the generative
process is described in ``README.md``.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tfrecs_llm.data.sample import INTERACTIONS_FILE, ITEMS_FILE, SAMPLE_DIR
from tfrecs_llm.data.schema import validate_interactions, validate_items
from tfrecs_llm.data.splits import leave_last_out
from tfrecs_llm.data.sample.vocabulary import (
    FOLLOW_UP_TEMPLATES,
    GENERIC_QUALITIES,
    GENERIC_SENTENCES,
    GENERIC_TITLE_WORDS,
    NOISE_SENTENCE,
    OPENING_TEMPLATES,
    TITLE_TEMPLATES,
    TOPICS,
    USER_TEXT_TEMPLATES,
    Topic,
)

DEFAULT_SEED = 2024
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_DAY = 86_400
_STOP_WORDS = frozenset(
    "a an and also about any anything as at for from i in into is it its m me more of on or "
    "other please s the this to with".split()
)


@dataclass(frozen=True)
class GeneratorConfig:
    """Knobs of the generative process; the defaults produce the bundled files."""

    seed: int = DEFAULT_SEED
    items_per_topic: tuple[int, int] = (40, 50)
    n_users: int = 1200
    events_per_user: tuple[int, int] = (5, 25)
    p_preferred: float = 0.75
    p_two_topics: float = 0.6
    topic_concentration: float = 2.0
    topic_prior_concentration: float = 20.0
    drift: float = 1.0
    zipf_exponent: float = 0.85
    global_popularity_sigma: float = 0.3
    p_user_text: float = 0.3
    p_title_noise: float = 0.1
    p_description_noise: float = 0.15
    start: str = "2024-01-01"
    days: int = 182
    catalog_start: str = "2021-01-01"


def _fix_articles(text: str) -> str:
    """Turns "a"/"A" before a vowel into "an"/"An"."""
    return re.sub(r"\b([Aa]) (?=[aeiouAEIOU])", r"\1n ", text)


def _pick(rng: np.random.Generator, words: Sequence[str], size: int = 1) -> list[str]:
    """Draws ``size`` distinct words."""
    return [words[i] for i in rng.choice(len(words), size=size, replace=False)]


def _title(rng: np.random.Generator, topic: Topic, noise_topic: Topic | None) -> str:
    """One title without repeated words; ``noise_topic`` supplies the adjective and 2nd noun."""
    while True:
        noun, noun2 = _pick(rng, topic.nouns, 2)
        adj = _pick(rng, topic.adjectives)[0]
        if noise_topic is not None:
            adj, noun2 = _pick(rng, noise_topic.adjectives)[0], _pick(rng, noise_topic.nouns)[0]
        template = TITLE_TEMPLATES[rng.integers(len(TITLE_TEMPLATES))]
        generic = GENERIC_TITLE_WORDS[rng.integers(len(GENERIC_TITLE_WORDS))]
        title = template.format(adj=adj, noun=noun, noun2=noun2, generic=generic)
        words = re.findall(r"[a-z]+", title.lower())
        if len(set(words)) == len(words):
            return title


def _description(rng: np.random.Generator, topic: Topic, noise_topic: Topic | None) -> str:
    """One to three sentences built from the topic keywords (plus optional noise)."""
    kw1, kw2, kw3 = _pick(rng, topic.keywords, 3)
    fill = {
        "kw1": kw1,
        "kw2": kw2,
        "kw3": kw3,
        "quality": GENERIC_QUALITIES[rng.integers(len(GENERIC_QUALITIES))],
        "format": topic.formats[rng.integers(len(topic.formats))],
    }
    sentences = [OPENING_TEMPLATES[rng.integers(len(OPENING_TEMPLATES))].format(**fill)]
    if rng.random() < 0.7:
        follow_kw1, follow_kw2 = _pick(rng, topic.keywords, 2)
        template = FOLLOW_UP_TEMPLATES[rng.integers(len(FOLLOW_UP_TEMPLATES))]
        sentences.append(template.format(kw1=follow_kw1, kw2=follow_kw2))
    if noise_topic is not None:
        sentences.append(NOISE_SENTENCE.format(kw=_pick(rng, noise_topic.keywords)[0]))
    elif rng.random() < 0.3:
        sentences.append(GENERIC_SENTENCES[rng.integers(len(GENERIC_SENTENCES))])
    return _fix_articles(" ".join(sentences))


def _other_topic(rng: np.random.Generator, topic_index: int) -> Topic:
    """A topic drawn uniformly among the other topics."""
    others = [t for i, t in enumerate(TOPICS) if i != topic_index]
    return others[rng.integers(len(others))]


def _epoch(day: str) -> int:
    """Seconds since the Unix epoch of a UTC date ``YYYY-MM-DD``."""
    return int(pd.Timestamp(day, tz="UTC").timestamp())


def _format_times(seconds: np.ndarray) -> list[str]:
    """ISO-8601 UTC strings with seconds."""
    return list(pd.to_datetime(seconds, unit="s", utc=True).strftime(TIME_FORMAT))


def make_items(rng: np.random.Generator, cfg: GeneratorConfig) -> tuple[pd.DataFrame, np.ndarray]:
    """The catalogue (sorted by ``item_id``) and each row's popularity weight."""
    rows: list[dict[str, str]] = []
    weights: list[float] = []
    titles: set[str] = set()
    low, high = cfg.items_per_topic
    for topic_index, topic in enumerate(TOPICS):
        n_items = int(rng.integers(low, high + 1))
        within_topic = 1.0 / np.arange(1, n_items + 1) ** cfg.zipf_exponent
        global_factor = rng.lognormal(0.0, cfg.global_popularity_sigma, size=n_items)
        weights.extend(within_topic[rng.permutation(n_items)] * global_factor)
        for _ in range(n_items):
            noisy = rng.random() < cfg.p_title_noise
            title = _title(rng, topic, _other_topic(rng, topic_index) if noisy else None)
            while title in titles:
                title = _title(rng, topic, None)
            titles.add(title)
            noisy = rng.random() < cfg.p_description_noise
            description = _description(
                rng, topic, _other_topic(rng, topic_index) if noisy else None
            )
            rows.append({"title": title, "description": description, "category": topic.name})
    start, end = _epoch(cfg.catalog_start), _epoch(cfg.start)
    published = rng.integers(start, end, size=len(rows))
    items = pd.DataFrame(rows).assign(published_at=_format_times(published))
    order = rng.permutation(len(rows))
    items = items.iloc[order].reset_index(drop=True)
    items.insert(0, "item_id", [f"i{rank + 1:04d}" for rank in range(len(rows))])
    return items, np.asarray(weights)[order]


def _event_times(rng: np.random.Generator, n_events: int, cfg: GeneratorConfig) -> np.ndarray:
    """Strictly increasing event times (seconds) grouped in sessions spread over an active span."""
    window = cfg.days * _DAY
    span_start = rng.uniform(0, 0.7 * window)
    span = rng.uniform(14 * _DAY, window - span_start - _DAY)
    n_sessions = 2 + rng.binomial(n_events - 2, 0.3)
    session_starts = np.sort(rng.uniform(span_start, span_start + span, size=n_sessions))
    sizes = 1 + rng.multinomial(n_events - n_sessions, np.full(n_sessions, 1.0 / n_sessions))
    times = np.concatenate(
        [s + np.cumsum(rng.integers(30, 1200, size=n)) for s, n in zip(session_starts, sizes)]
    ).astype(np.int64)
    for i in range(1, n_events):
        times[i] = max(times[i], times[i - 1] + 60)
    return _epoch(cfg.start) + times


def _user_text(rng: np.random.Generator, topics: np.ndarray, theta: np.ndarray) -> str:
    """A short statement of interests: keywords of the user's latent topics, never a title."""
    template = USER_TEXT_TEMPLATES[rng.integers(len(USER_TEXT_TEMPLATES))]
    n_slots = template.count("{kw")
    chosen: list[str] = []
    while len(chosen) < n_slots:
        topic = TOPICS[topics[rng.choice(len(topics), p=theta)]]
        keyword = _pick(rng, topic.keywords)[0]
        if keyword not in chosen:
            chosen.append(keyword)
    return template.format(**{f"kw{i + 1}": kw for i, kw in enumerate(chosen)})


def make_interactions(
    rng: np.random.Generator, cfg: GeneratorConfig, items: pd.DataFrame, weights: np.ndarray
) -> pd.DataFrame:
    """The event log, sorted by timestamp then user (see README.md for the process)."""
    topic_names = [t.name for t in TOPICS]
    item_topic = items["category"].map(topic_names.index).to_numpy()
    topic_prior = rng.dirichlet(np.full(len(TOPICS), cfg.topic_prior_concentration))
    global_p = weights / weights.sum()
    low, high = cfg.events_per_user
    rows: list[tuple[str, str, int, int, str]] = []
    for user in range(cfg.n_users):
        n_topics = 2 if rng.random() < cfg.p_two_topics else 1
        topics = rng.choice(len(TOPICS), size=n_topics, replace=False, p=topic_prior)
        theta = np.sort(rng.dirichlet(np.full(n_topics, cfg.topic_concentration)))[::-1]
        n_events = int(np.clip(low + rng.poisson(rng.gamma(2.0, 3.0)), low, high))
        times = _event_times(rng, n_events, cfg)
        text = _user_text(rng, topics, theta) if rng.random() < cfg.p_user_text else ""
        user_id = f"u{user + 1:04d}"
        seen = np.zeros(len(items), dtype=bool)
        for event in range(n_events):
            if rng.random() < cfg.p_preferred:
                mix = theta.copy()
                mix[1:] *= 1.0 + cfg.drift * event / max(n_events - 1, 1)
                topic = topics[rng.choice(n_topics, p=mix / mix.sum())]
                p = np.where(item_topic == topic, weights, 0.0)
                rating_p = (0.0, 0.03, 0.15, 0.42, 0.40)
            else:
                p = global_p.copy()
                rating_p = (0.10, 0.25, 0.35, 0.20, 0.10)
            p[seen] = 0.0
            item = int(rng.choice(len(items), p=p / p.sum()))
            seen[item] = True
            rating = 1 + int(rng.choice(5, p=rating_p))
            rows.append((user_id, items["item_id"].iat[item], times[event], rating, text))
    log = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "rating", "user_text"])
    log = log.sort_values(["timestamp", "user_id"], kind="stable").reset_index(drop=True)
    return log.assign(timestamp=_format_times(log["timestamp"].to_numpy()))


def generate(seed: int = DEFAULT_SEED) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Items and interactions of the sample dataset for ``seed`` (default: the bundled files)."""
    cfg = GeneratorConfig(seed=seed)
    rng = np.random.default_rng(cfg.seed)
    items, weights = make_items(rng, cfg)
    return items, make_interactions(rng, cfg, items, weights)


def write_sample(out_dir: Path = SAMPLE_DIR, seed: int = DEFAULT_SEED) -> tuple[Path, Path]:
    """Generates the dataset and writes ``items.csv`` and ``interactions.csv`` to ``out_dir``."""
    items, interactions = generate(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = (out_dir / ITEMS_FILE, out_dir / INTERACTIONS_FILE)
    for frame, path in zip((items, interactions), paths):
        frame.to_csv(path, index=False, lineterminator="\n", encoding="utf-8")
    return paths


def _tokens(text: str) -> list[str]:
    """Lowercase alphanumeric tokens without stop words, with a crude plural "s" stripped."""
    tokens = [t for t in re.findall(r"[a-z0-9]+", text.lower()) if t not in _STOP_WORDS]
    return [
        t[:-1] if len(t) > 3 and t.endswith("s") and not t.endswith("ss") else t for t in tokens
    ]


def _tfidf(docs: Sequence[str], queries: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """L2-normalised sublinear TF-IDF matrices; vocabulary and IDF come from ``docs``."""
    doc_tokens = [_tokens(d) for d in docs]
    vocab = {t: i for i, t in enumerate(sorted({t for tokens in doc_tokens for t in tokens}))}

    def counts(token_lists: list[list[str]]) -> np.ndarray:
        matrix = np.zeros((len(token_lists), len(vocab)))
        for row, tokens in enumerate(token_lists):
            for token in tokens:
                if token in vocab:
                    matrix[row, vocab[token]] += 1.0
        return matrix

    doc_counts = counts(doc_tokens)
    idf = np.log((1 + len(docs)) / (1 + (doc_counts > 0).sum(axis=0))) + 1.0

    def weigh(matrix: np.ndarray) -> np.ndarray:
        weighted = np.where(matrix > 0, 1.0 + np.log(np.maximum(matrix, 1.0)), 0.0) * idf
        return weighted / np.maximum(np.linalg.norm(weighted, axis=1, keepdims=True), 1e-12)

    return weigh(doc_counts), weigh(counts([_tokens(q) for q in queries]))


def _recall(scores: np.ndarray, exclude: list[np.ndarray], targets: np.ndarray, k: int) -> float:
    """Fraction of rows whose target is in the top ``k`` after masking excluded items."""
    scores = scores.copy()
    for row, excluded in enumerate(exclude):
        scores[row, excluded] = -np.inf
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return float((top == targets[:, None]).any(axis=1).mean())


def baseline_report(
    items: pd.DataFrame,
    interactions: pd.DataFrame,
    k: int = 10,
    history_length: int = 10,
    popularity_weight: float = 0.08,
) -> dict[str, float]:
    """Leave-last-out Recall@k of three reference rankers over the full catalogue.

    * popularity: training-event counts;
    * text_tfidf: cosine between the TF-IDF of (user_text + titles of the user's last
      ``history_length`` training items) and of each item's title + description, plus
      ``popularity_weight * log(1 + count)``;
    * topic_oracle: popularity restricted to the majority category of the user's training items
      (it reads the category labels, which the models do not get).

    The user's training items are excluded from the ranking; ties go to the earlier catalogue row.
    """
    train, test = leave_last_out(validate_interactions(interactions, validate_items(items)))
    train = train.sort_values(["user_id", "timestamp"], kind="stable")
    index = {item_id: i for i, item_id in enumerate(items["item_id"].astype(str))}
    train_idx = train["item_id"].astype(str).map(index).to_numpy()
    counts = np.bincount(train_idx, minlength=len(items)).astype(float)
    history = pd.Series(train_idx, index=train["user_id"].to_numpy()).groupby(level=0, sort=False)
    exclude = [history.get_group(user).to_numpy() for user in test["user_id"]]
    targets = test["item_id"].astype(str).map(index).to_numpy()

    titles = items["title"].astype(str).to_numpy()
    queries = [
        " ".join([str(text)] + list(titles[past[-history_length:]]))
        for text, past in zip(test["user_text"].fillna(""), exclude)
    ]
    item_vectors, query_vectors = _tfidf(items["title"] + " " + items["description"], queries)
    text_scores = query_vectors @ item_vectors.T + popularity_weight * np.log1p(counts)

    categories = items["category"].to_numpy()
    majority = [pd.Series(categories[past]).value_counts().index[0] for past in exclude]
    oracle_scores = counts + (categories[None, :] == np.asarray(majority)[:, None]) * 1e9

    popularity = _recall(np.tile(counts, (len(test), 1)), exclude, targets, k)
    text = _recall(text_scores, exclude, targets, k)
    return {
        "n_items": len(items),
        "n_users": int(interactions["user_id"].nunique()),
        "n_interactions": len(interactions),
        "n_test_events": len(test),
        f"popularity_recall@{k}": popularity,
        f"text_tfidf_recall@{k}": text,
        f"topic_oracle_recall@{k}": _recall(oracle_scores, exclude, targets, k),
        "text_over_popularity": text / popularity if popularity > 0 else float("inf"),
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point: write the CSVs and print the baseline report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out-dir", type=Path, default=SAMPLE_DIR)
    args = parser.parse_args(argv)
    items_path, interactions_path = write_sample(args.out_dir, args.seed)
    items = pd.read_csv(items_path, dtype=str, keep_default_na=False)
    interactions = pd.read_csv(interactions_path, dtype=str, keep_default_na=False)
    for path in (items_path, interactions_path):
        print(f"wrote {path} ({path.stat().st_size} bytes)")
    for key, value in baseline_report(items, interactions).items():
        print(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")


if __name__ == "__main__":
    main()
