"""Training speed and quality of the fine-tuning modes on the bundled sample, real MiniLM.

Modes (``encoder.trainable``): ``frozen`` (pooled user-text embeddings computed once and cached;
a step trains only the heads), ``full``, ``top_layers`` (top 2 of 6 layers) and ``lora`` (rank 4).
Every mode trains the same examples: each user's last ``--events-per-user`` training events of
the sample's leave-last-out split, batch 32, one epoch, tokenized in the tf.data pipeline when
BERT runs in the step. Per mode it reports training examples/s (median step time over the steps
after ``--warmup`` warm-up steps; the same step count in every mode) and held-out Recall@10 of
that model; ``frozen`` is also trained for 5 epochs (cheap once cached). Reported separately: the
one-time user-text embedding pass of ``frozen`` (texts/s), the catalog embedding pass (items/s),
and tokenization alone (texts/s). Writes benchmarks/results/training_speed.json and .png.

    python -m benchmarks.training_speed [--quick]

``--quick`` times 5 steps per mode and skips the quality runs: about 3 CPU-minutes against 10
for the full run (20 minutes of wall time on a 2-core machine shared with other jobs).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

import tfrecs_llm  # noqa: F401  (selects Keras 2 before TensorFlow loads)
import tensorflow as tf
import tf_keras

from tfrecs_llm.recommender import Recommender
from tfrecs_llm.config import Config
from tfrecs_llm.data.pipeline import make_dataset
from tfrecs_llm.data.sample import load_sample
from tfrecs_llm.data.schema import validate_interactions, validate_items
from tfrecs_llm.data.splits import leave_last_out
from tfrecs_llm.data.user_text import UserTextBuilder
from tfrecs_llm.text.encoder import TextEncoder
from tfrecs_llm.text.presets import load_encoder
from tfrecs_llm.text.encoder import embed_texts
from tfrecs_llm.text.preprocessing import tokenize_in_pipeline
from tfrecs_llm.data.catalog import Catalog
from tfrecs_llm.training.retrieval import build_model, example_features, training_examples

RESULTS = Path(__file__).parent / "results"
BASE = {"train.batch_size": 32, "train.epochs": 1, "encoder.sequence_length": 64}
MODES: dict[str, dict[str, Any]] = {
    "frozen": {},
    "full": {},
    "top_layers": {"encoder.trainable_layers": 2},
    # LoRA factors start at zero change: they need a larger step than full fine-tuning's 2e-5.
    "lora": {"encoder.lora_rank": 4, "train.encoder_learning_rate": 1e-3},
}
FROZEN_LONG_EPOCHS = 5


class StepTimer(tf_keras.callbacks.Callback):
    """Wall time of every training step (logs are fetched per step, so each step has finished)."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.seconds.append(time.perf_counter() - self._start)


def _timed(function, *args, **kwargs) -> tuple[Any, float]:
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def train_mode(
    config: Config,
    encoder: TextEncoder,
    catalog: Catalog,
    features: dict[str, np.ndarray],
    max_steps: int | None,
) -> tuple[Any, list[float]]:
    """Trains as ``Recommender.train`` does (same dataset, tokenization, model and optimizer)
    for ``config.train.epochs`` epochs, or only ``max_steps`` steps; returns model, step times."""
    dataset = make_dataset(features, config.train.batch_size, seed=config.train.seed)
    if config.encoder.trainable != "frozen":
        dataset = tokenize_in_pipeline(dataset, encoder)
    if max_steps is not None:
        dataset = dataset.repeat().take(max_steps)
    tf.keras.utils.set_random_seed(config.train.seed)
    model = build_model(config, encoder, catalog)
    timer = StepTimer()
    model.fit(dataset, epochs=config.train.epochs, callbacks=[timer], verbose=0)
    return model, timer.seconds


def speed(step_seconds: list[float], warmup: int, batch_size: int) -> dict[str, float]:
    timed = np.asarray(step_seconds[warmup:])
    if not len(timed):
        raise ValueError(f"only {len(step_seconds)} steps ran, all of them warm-up ({warmup})")
    median = float(np.median(timed))
    return {
        "examples_per_second": batch_size / median,
        "step_seconds_median": median,
        "step_seconds_p90": float(np.percentile(timed, 90)),
        "timed_steps": int(len(timed)),
        "warmup_steps": warmup,
        "warmup_seconds": float(np.sum(step_seconds[:warmup])),
    }


def recall_at_10(config: Config, encoder: TextEncoder, catalog: Catalog, model: Any, train, test) -> dict:
    metrics = Recommender(config, encoder, catalog, model).evaluate(train, test, ks=(10,))
    return {"recall@10": metrics["model"]["recall@10"], "popularity_recall@10": metrics["popularity"]["recall@10"],
            "num_queries": int(metrics["model"]["num_queries"])}


def tokenization_speed(encoder: TextEncoder, texts: np.ndarray, batch_size: int) -> float:
    """Texts/s of the pipeline's tokenization alone (second pass, after tracing)."""
    dataset = tokenize_in_pipeline(make_dataset({"user_text": texts}, batch_size, shuffle=False), encoder)
    for _ in dataset:
        pass
    start = time.perf_counter()
    for _ in dataset:
        pass
    return len(texts) / (time.perf_counter() - start)


def run(quick: bool, events_per_user: int, warmup: int, steps: int) -> dict[str, Any]:
    raw_items, raw_events = load_sample()
    items = validate_items(raw_items)
    train, test = leave_last_out(validate_interactions(raw_events, items))
    base = Config().with_overrides({**BASE, "train.max_events_per_user": events_per_user})
    builder = UserTextBuilder.from_config(items, base.data)
    examples = training_examples(train, builder, base)
    max_steps = warmup + steps if quick else None
    result: dict[str, Any] = {"modes": {}}

    frozen_encoder = load_encoder(base.encoder)
    catalog, seconds = _timed(Catalog.build, items, lambda texts: embed_texts(frozen_encoder, texts, verbose=False))
    catalog.id_vocabulary = catalog.item_ids[np.isin(catalog.item_ids, train["item_id"].astype(str))]
    result["catalog_embedding"] = {"items": len(catalog.item_ids), "seconds": seconds,
                                   "items_per_second": len(catalog.item_ids) / seconds}
    print(f"catalog embedding: {len(catalog.item_ids) / seconds:.1f} items/s", flush=True)

    for mode, overrides in MODES.items():
        config = base.with_overrides({"encoder.trainable": mode, **overrides})
        encoder = frozen_encoder if mode == "frozen" else load_encoder(config.encoder)
        features, seconds = _timed(example_features, examples, catalog, encoder, config, verbose=False)
        if mode == "frozen":
            unique = len(set(examples["user_text"]))
            result["user_text_embedding_pass"] = {"texts": len(examples), "unique_texts": unique,
                                                  "seconds": seconds, "texts_per_second": unique / seconds}
            print(f"one-time user-text embedding pass: {unique / seconds:.1f} texts/s ({unique} unique)", flush=True)
        else:
            result.setdefault("tokenization_texts_per_second", tokenization_speed(
                encoder, features["user_text"], config.train.batch_size))
        model, step_seconds = train_mode(config, encoder, catalog, features, max_steps)
        row = speed(step_seconds, warmup, config.train.batch_size)
        row["trainable_bert_parameters"] = int(sum(v.shape.num_elements() for v in encoder.trainable_weights))
        row["overrides"] = {"encoder.trainable": mode, **overrides}
        if not quick:
            row.update(recall_at_10(config, encoder, catalog, model, train, test))
        result["modes"][mode] = row
        print(f"{mode:>10}: {row['examples_per_second']:8.1f} examples/s "
              f"(median step {row['step_seconds_median']:.3f} s over {row['timed_steps']} steps), "
              f"{row['trainable_bert_parameters']:,} BERT parameters trained"
              + (f", recall@10 {row['recall@10']:.4f}" if "recall@10" in row else ""), flush=True)
        if mode == "frozen" and not quick:
            long = config.with_overrides({"train.epochs": FROZEN_LONG_EPOCHS})
            model, _ = train_mode(long, encoder, catalog, features, None)
            result["frozen_5_epochs"] = recall_at_10(long, encoder, catalog, model, train, test)
            print(f"frozen, {FROZEN_LONG_EPOCHS} epochs: recall@10 {result['frozen_5_epochs']['recall@10']:.4f}", flush=True)

    modes = result["modes"]
    result["ratios"] = {f"frozen_vs_{m}": modes["frozen"]["examples_per_second"] / modes[m]["examples_per_second"]
                        for m in modes if m != "frozen"}
    full_step = modes["full"]["step_seconds_median"]
    result["tokenization_share_of_full_step"] = base.train.batch_size / result["tokenization_texts_per_second"] / full_step
    result["training_examples"] = len(examples)
    return result


def _plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = result["modes"]
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    labels = [*modes, "embedding pass\n(texts/s)", "catalog\n(items/s)"]
    values = [modes[m]["examples_per_second"] for m in modes] + [
        result["user_text_embedding_pass"]["texts_per_second"], result["catalog_embedding"]["items_per_second"]]
    colors = ["C0"] * len(modes) + ["C7", "C7"]
    axes[0].bar(labels, values, color=colors)
    axes[0].set_yscale("log")
    axes[0].set_ylabel("training examples/s (log)")
    axes[0].set_title(f"MiniLM, batch {BASE['train.batch_size']}, 2-core CPU")
    for x, v in enumerate(values):
        axes[0].annotate(f"{v:.0f}" if v >= 10 else f"{v:.1f}", (x, v), ha="center", va="bottom", fontsize=8)
    axes[0].tick_params(axis="x", labelsize=8)
    if all("recall@10" in modes[m] for m in modes):
        names = list(modes) + ([f"frozen\n{FROZEN_LONG_EPOCHS} epochs"] if "frozen_5_epochs" in result else [])
        recalls = [modes[m]["recall@10"] for m in modes]
        if "frozen_5_epochs" in result:
            recalls.append(result["frozen_5_epochs"]["recall@10"])
        axes[1].bar(names, recalls, color="C2")
        axes[1].axhline(modes["frozen"]["popularity_recall@10"], color="C3", linestyle="--", label="popularity")
        axes[1].set_ylabel("Recall@10 (leave-last-out)")
        axes[1].set_title(f"quality after 1 epoch, {result['training_examples']} examples")
        axes[1].legend()
        axes[1].tick_params(axis="x", labelsize=8)
    else:
        axes[1].axis("off")
        axes[1].text(0.5, 0.5, "--quick: no quality runs", ha="center")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="time a few steps per mode, no quality runs")
    parser.add_argument("--events-per-user", type=int, default=1,
                        help="train.max_events_per_user: each user's last N training events (default 1)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per mode (tracing)")
    parser.add_argument("--steps", type=int, default=5,
                        help="timed steps per mode with --quick (otherwise: the rest of the epoch)")
    args = parser.parse_args()
    steps = args.steps
    load_before = os.getloadavg()
    started = time.perf_counter()
    result = run(args.quick, args.events_per_user, args.warmup, steps)
    result.update(
        data="bundled sample (701 items, 1200 users), leave-last-out by time",
        settings={**BASE, "train.max_events_per_user": args.events_per_user, "quick": args.quick,
                  "frozen_long_epochs": FROZEN_LONG_EPOCHS, "preset": Config().encoder.preset},
        seconds=time.perf_counter() - started,
        machine={"cpus": os.cpu_count(), "platform": platform.platform(), "tensorflow": tf.__version__,
                 "load_average_before": load_before[0], "load_average_after": os.getloadavg()[0]},
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "training_speed.json").write_text(json.dumps(result, indent=2))
    _plot(result, RESULTS / "training_speed.png")
    for name, ratio in result["ratios"].items():
        print(f"{name}: {ratio:.0f}x")
    print(f"wrote {RESULTS / 'training_speed.json'} and training_speed.png ({result['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
