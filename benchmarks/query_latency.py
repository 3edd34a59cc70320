"""Query latency: the naive keras-hub path against our exported SavedModels, over 1M items.

Naive path (what a user writes with keras-hub): ``BertTokenizer`` + ``StartEndPacker`` padding to
32 tokens + ``BertBackbone`` + masked mean pooling in one ``tf.function``, then the query
projection and the same top-k layer (or exact matmul + top_k) called in Python. It pads to exactly
the query length, so it wastes nothing on padding. Its fixed width is static in the graph, and
TensorFlow's graph runs BERT about 30% slower at a static width than at the dynamic width our
exports trim each batch to; ``ours_scann_plain`` (our export without XLA) separates that from
what XLA adds.

Ours: SavedModels assembled as ``export_tf_serving`` assembles them (``build_index`` with its ScaNN
tuning, ``RankingStage``, ``RecommendModule``, ``SAVE_OPTIONS``) from the real MiniLM encoder, a
query projection to 64 dims and a synthetic table of ``--items`` unit item embeddings clustered
around the query embeddings of other texts (where a trained two-tower puts items: near their
users' queries), ScaNN tuned on a further 512 such query embeddings (as exports tune on their
training queries); then loaded back from disk and called through their signatures: ``serving_default`` of the ScaNN
export with BERT compiled by XLA (``encoder.jit_compile``) and without, of the exact
(brute-force) export with XLA, and ``embed_query`` (the encoder alone, projection included).
``serving_default`` retrieves ``ranking.num_candidates`` (50) and re-ranks them (MMR, reasons): it
does more than the naive top-10.

Queries are texts of exactly 32 WordPiece tokens ([CLS] and [SEP] included). Paths are called in
turn, in a shuffled order each round, so that load from other processes hits all of them alike
(the exact-search paths in a rotation of their own: they evict BERT's weights from the caches).
A third kind of path, ``bound_fp32_matmuls_only``, bounds what any float32 path can reach here:
the tokenizer, BERT's matrix products alone (nothing else of BERT) compiled by XLA, and ScaNN;
``float32_bound`` reports the naive path's time over it, and whether bfloat16 or the int8
matmuls a stock TF graph can run are faster than float32 (``reduced_precision_matmul``).

Reports p50/p99 latency of 1 query over ``--calls`` calls, queries/s for batches of 64, a
per-piece profile (tokenizer, BERT with and without XLA, projection, top-k) and the cosine of our
query embeddings to the naive ones. Writes benchmarks/results/query_latency.json and .png.

Sizes: each export's MB against what it has to hold (tower weights; what the index searches with:
ScaNN's state and the ids, or the exact table and the ids; the texts and title lengths reasons
read), with the target ``export <= 1.1 x (weights + index + catalog payload)``. ``--sizes-only``
builds the exports and writes only that (benchmarks/results/export_sizes.json), without timing.

    python -m benchmarks.query_latency [--items 1000000] [--calls 200] [--export-dir DIR] [--intra-op-threads N]
    python -m benchmarks.query_latency --sizes-only [--items 1000000] [--export-dir DIR]

``--export-dir`` keeps the exports (reused by the next run with the same ``--items``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import tfrecs_llm  # noqa: F401  (selects Keras 2 before TensorFlow loads)

RESULTS = Path(__file__).parent / "results"
QUERY_TOKENS = 32
BATCH = 64
K = 10
EMBEDDING_DIM = 64
EXPORTS = {  # name -> (index kind, BERT compiled by XLA)
    "scann_xla": ("scann", True),
    "scann_plain": ("scann", False),
    "brute_force_xla": ("brute_force", True),
}


def exact_length_texts(tokenizer: Any, count: int, num_tokens: int = QUERY_TOKENS, seed: int = 0) -> list[str]:
    """``count`` distinct texts of whole-word vocabulary entries that tokenize to exactly
    ``num_tokens`` WordPiece tokens with [CLS] and [SEP]."""
    words = [w for w in tokenizer.get_vocabulary() if w.isascii() and w.isalpha() and 3 <= len(w) <= 10]
    rng = random.Random(seed)
    texts: list[str] = []
    while len(texts) < count:
        candidates = [" ".join(rng.sample(words, num_tokens - 2)) for _ in range(count)]
        lengths = [len(ids) for ids in tokenizer(candidates)]
        texts += [t for t, n in zip(candidates, lengths) if n == num_tokens - 2]
    return texts[:count]


def embed_queries(query_tower: Any, texts: list[str]) -> np.ndarray:
    """``[len(texts), EMBEDDING_DIM]`` query embeddings, in batches of ``BATCH``."""
    import tensorflow as tf

    batches = [texts[i : i + BATCH] for i in range(0, len(texts), BATCH)]
    return np.concatenate([query_tower({"user_text": tf.constant(batch)}).numpy() for batch in batches])


def synthetic_items(
    num_items: int, dim: int = EMBEDDING_DIM, seed: int = 0, centres: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Item ids and ``[num_items, dim]`` unit embeddings around ``centres: [c, dim]`` (default:
    ``num_items // 500`` random directions), each at cosine ~0.9 to its centre."""
    rng = np.random.default_rng(seed)
    if centres is None:
        centres = rng.normal(size=(max(num_items // 500, 1), dim))
    centres = np.sqrt(dim) * centres / np.linalg.norm(centres, axis=1, keepdims=True)
    embeddings = centres.astype(np.float32)[rng.integers(0, len(centres), num_items)]
    embeddings += 0.5 * rng.normal(size=embeddings.shape).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    return np.array([f"item-{i}" for i in range(num_items)]), embeddings


def stored_mb(variables: list[Any]) -> float:
    """MB of distinct variables as a checkpoint stores them (a string: its bytes + 1 length byte)."""
    import tensorflow as tf

    total, seen = 0, set()
    for variable in variables:
        if variable is None or variable.ref() in seen:
            continue
        seen.add(variable.ref())
        if variable.dtype == tf.string:
            total += int(tf.reduce_sum(tf.strings.length(variable))) + int(tf.size(variable))
        else:
            total += int(tf.size(variable)) * variable.dtype.size
    return total / 1e6


SIZE_TARGET = "SavedModel size <= 1.1 x (weights + index + catalog payload)"


def size_breakdown(path: Path, towers: list[Any], index: Any, stage: Any) -> dict[str, Any]:
    """The export's MB against its parts: tower weights, what ``index`` searches with (ScaNN's
    state tensors or the exact table, and the ids) and the catalog payload reasons read."""
    state = getattr(index, "_searcher_state", None)
    parts = {
        "weights_mb": stored_mb([v for tower in towers for v in tower.variables]),
        "index_mb": stored_mb(list(index.variables) + (list(state.variables) if state is not None else [])),
        "catalog_payload_mb": stored_mb([stage.item_texts, stage.item_title_lengths, stage.item_titles]),
    }
    files = [f for f in path.rglob("*") if f.is_file()]
    export = sum(f.stat().st_size for f in files) / 1e6
    needed = parts["weights_mb"] + parts["index_mb"]
    return {
        **{name: round(mb, 1) for name, mb in parts.items()},
        "export_mb": round(export, 1),
        "saved_model_pb_mb": round((path / "saved_model.pb").stat().st_size / 1e6, 2),
        "export_over_weights_index": round(export / needed, 3),
        "export_over_weights_index_payload": round(export / (needed + parts["catalog_payload_mb"]), 3),
        "targets": {SIZE_TARGET: export <= 1.1 * (needed + parts["catalog_payload_mb"])},
    }


def size_targets(size_parts: dict[str, dict]) -> dict[str, bool]:
    return {f"{name}: {SIZE_TARGET}": parts["targets"][SIZE_TARGET] for name, parts in size_parts.items()}


def write_sizes(output: Path, items: int, index_choices: dict, size_parts: dict[str, dict], seconds: float) -> None:
    """The ``--sizes-only`` report: every export's size breakdown and the size target."""
    report = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "setup": {"items": items, "embedding_dim": EMBEDDING_DIM, "index": index_choices},
        "sizes": size_parts,
        "targets": size_targets(size_parts),
        "seconds": round(seconds, 1),
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2))
    print(f"wrote {output}")


def recall_of(found: np.ndarray, exact: np.ndarray) -> float:
    """Mean recall@k of ``found: [n, k]`` item ids (bytes or str) against ``exact: [n, k]``."""
    as_text = lambda row: {x.decode() if isinstance(x, bytes) else str(x) for x in row}  # noqa: E731
    return round(float(np.mean([len(as_text(f) & set(e)) / len(e) for f, e in zip(found, exact)])), 4)


def build_exports(
    query_tower: Any, ids: np.ndarray, embeddings: np.ndarray, export_dir: Path, tuning_queries: np.ndarray
) -> tuple[dict[str, Path], Any, dict[str, Any], dict[str, dict]]:
    """Writes the ``EXPORTS`` SavedModels (skipping ones already there); returns their paths, the
    ScaNN layer (the naive path searches the same index), what the index builder chose and each
    export's ``size_breakdown``. ScaNN is tuned on ``tuning_queries: [n, dim]``, as an export
    tunes it on its training user texts' query embeddings."""
    import tensorflow as tf

    from tfrecs_llm.config import IndexConfig, ModelConfig, RankingConfig
    from tfrecs_llm.export.signatures import RecommendModule
    from tfrecs_llm.export.tf_serving import SAVE_OPTIONS
    from tfrecs_llm.index import build_index
    from tfrecs_llm.ranking.stage import RankingStage
    from tfrecs_llm.towers import ItemTower

    num_candidates = RankingConfig().num_candidates
    titles = [f"synthetic item {i}" for i in range(len(ids))]
    item_tower = ItemTower(["synthetic"], ModelConfig(embedding_dim=EMBEDDING_DIM))
    paths, indexes, choices, sizes = {}, {}, {}, {}
    for name, (kind, jit_compile) in EXPORTS.items():
        paths[name] = export_dir / name
        if kind not in indexes:
            start = time.perf_counter()
            # The export builds its index at k = max(index.k, ranking.num_candidates).
            indexes[kind], choice = build_index(
                ids, embeddings, IndexConfig(kind=kind), k=max(K, num_candidates), query_embeddings=tuning_queries
            )
            choices[kind] = {"kind": choice.kind, "build_s": round(time.perf_counter() - start, 1)}
            if choice.scann is not None:
                choices[kind]["parameters"] = choice.scann.parameters
                choices[kind]["tuning_recall"] = choice.scann.recall
            print(f"built {kind} index over {len(ids)} items in {choices[kind]['build_s']} s", flush=True)
        stage = RankingStage(indexes[kind], None, ids, embeddings, titles, titles, num_candidates)
        if not (paths[name] / "saved_model.pb").is_file():
            start = time.perf_counter()
            module = RecommendModule(query_tower, item_tower, stage, K, embeds_items=False, jit_compile=jit_compile)
            tf.saved_model.save(module, str(paths[name]), signatures=module.signatures(), options=SAVE_OPTIONS)
            print(f"exported {name} in {time.perf_counter() - start:.0f} s", flush=True)
        sizes[name] = size_breakdown(paths[name], [query_tower, item_tower], indexes[kind], stage)
        print(f"{name}: {json.dumps(sizes[name])}", flush=True)
    return paths, indexes["scann"], choices, sizes


def naive_paths(preset: str, projection: Any, scann: Any, embeddings: np.ndarray) -> dict[str, Callable]:
    """The keras-hub path as a user writes it: text -> pooled BERT -> projection -> top-k."""
    import keras_hub
    import tensorflow as tf

    tokenizer = keras_hub.models.BertTokenizer.from_preset(preset)
    backbone = keras_hub.models.BertBackbone.from_preset(preset)
    packer = keras_hub.layers.StartEndPacker(
        start_value=tokenizer.cls_token_id, end_value=tokenizer.sep_token_id, pad_value=tokenizer.pad_token_id,
        sequence_length=QUERY_TOKENS, return_padding_mask=True,
    )
    kernel, bias = (tf.constant(w) for w in projection.get_weights())
    items = tf.constant(embeddings)

    @tf.function
    def embed(texts: tf.Tensor) -> tf.Tensor:
        token_ids, mask = packer(tokenizer(texts))
        outputs = backbone({"token_ids": token_ids, "segment_ids": tf.zeros_like(token_ids), "padding_mask": mask})
        weights = tf.cast(mask, tf.float32)[:, :, tf.newaxis]
        pooled = tf.reduce_sum(outputs["sequence_output"] * weights, 1) / tf.reduce_sum(weights, 1)
        return tf.math.l2_normalize(tf.matmul(pooled, kernel) + bias, axis=-1)

    @tf.function
    def exact(queries: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return tf.math.top_k(tf.matmul(queries, items, transpose_b=True), K)

    return {
        "naive_encoder": lambda texts: embed(texts).numpy(),
        "naive_scann": lambda texts: scann(embed(texts), k=K)[1].numpy(),
        "naive_exact": lambda texts: exact(embed(texts))[1].numpy(),
    }


def saved_model_paths(paths: dict[str, Path]) -> dict[str, Callable]:
    """Our exports, loaded from disk as a server loads them, called through their signatures."""
    import scann  # noqa: F401  (registers the ScaNN ops)
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the TF Text ops)

    loaded = {name: tf.saved_model.load(str(path)) for name, path in paths.items()}

    def signature(name: str, signature_name: str, output: str) -> Callable:
        function = loaded[name].signatures[signature_name]
        return lambda texts: function(user_text=texts)[output].numpy()

    calls = {f"ours_{name}": signature(name, "serving_default", "item_ids") for name in paths}
    calls["ours_encoder_xla"] = signature("scann_xla", "embed_query", "embeddings")
    calls["ours_encoder_plain"] = signature("scann_plain", "embed_query", "embeddings")
    return calls


def matmul_bound(encoder: Any, scann: Any) -> Callable:
    """A lower bound for any float32 path: tokenizer, then only BERT's matrix products (per
    layer Q/K/V fused into one, attention output, the two feed-forward ones: 0.68 GFLOP for 32
    tokens) compiled by XLA on the real weights, then ScaNN. It skips embeddings, attention
    scores, softmax, layer norms, GELU, pooling and projection, so no real path is faster."""
    import tensorflow as tf

    backbone = encoder.backbone
    weights = []
    for i in range(backbone.num_layers):
        layer = {w.path.split("/", 1)[1]: w.value for w in backbone.get_layer(f"transformer_layer_{i}").weights}
        qkv = [tf.reshape(layer[f"self_attention_layer/{n}/kernel"], [encoder.hidden_dim, -1]) for n in ("query", "key", "value")]
        weights.append([
            tf.Variable(tf.concat(qkv, 1)),
            tf.Variable(tf.reshape(layer["self_attention_layer/attention_output/kernel"], [-1, encoder.hidden_dim])),
            layer["feedforward_intermediate_dense/kernel"],
            layer["feedforward_output_dense/kernel"],
        ])

    @tf.function(jit_compile=True)
    def products(token_ids: tf.Tensor) -> tf.Tensor:
        x = tf.tile(tf.cast(token_ids, tf.float32)[..., tf.newaxis] * 1e-4, [1, 1, encoder.hidden_dim])
        x = tf.reshape(x, [-1, encoder.hidden_dim])
        for qkv, output, intermediate, down in weights:
            x = tf.matmul(tf.matmul(x, qkv)[:, : encoder.hidden_dim], output)
            x = tf.matmul(tf.matmul(x, intermediate), down)
        return tf.reshape(x, [tf.shape(token_ids)[0], -1])[:, :EMBEDDING_DIM]

    @tf.function
    def call(texts: tf.Tensor) -> tf.Tensor:
        token_ids, _ = encoder.tokenize(texts, 16)
        return scann(tf.math.l2_normalize(products(token_ids), -1), k=K)[1]

    return lambda texts: call(texts).numpy()


def reduced_precision_matmul(rounds: int = 200) -> dict[str, Any]:
    """Whether lower precision could lower that bound: BERT's largest product, ``[32, 384] x
    [384, 1536]``, in float32 against bfloat16 and the int8 matmuls a stock TF graph (TF Serving)
    can run: ``QuantizedMatMul``
    (quint8 x quint8 -> qint32, with the activation quantized per call); the fused oneDNN op
    ``QuantizedMatMulWithBiasAndDequantize`` is reported as it runs (or fails) here."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    a = tf.constant(rng.normal(size=(QUERY_TOKENS, 384)).astype(np.float32))
    w = tf.constant(0.05 * rng.normal(size=(384, 1536)).astype(np.float32))
    w8, w_min, w_max = tf.quantization.quantize(w, -0.3, 0.3, tf.quint8, mode="MIN_FIRST")

    def quantized(fused: bool) -> tf.Tensor:
        a8, a_min, a_max = tf.quantization.quantize(a, tf.reduce_min(a), tf.reduce_max(a), tf.quint8, mode="MIN_FIRST")
        if fused:
            return tf.raw_ops.QuantizedMatMulWithBiasAndDequantize(
                a=a8, b=tf.bitcast(tf.cast(tf.cast(w8, tf.int32) - 128, tf.int8), tf.qint8),
                bias=tf.zeros([1536]), min_a=a_min, max_a=a_max, min_b=w_min, max_b=w_max,
                min_freezed_output=-1.0, max_freezed_output=1.0, Toutput=tf.float32, input_quant_mode="MIN_FIRST",
            )
        out, o_min, o_max = tf.raw_ops.QuantizedMatMul(
            a=a8, b=w8, min_a=a_min, max_a=a_max, min_b=w_min, max_b=w_max, Toutput=tf.qint32
        )
        return tf.quantization.dequantize(out, o_min, o_max, mode="MIN_FIRST")

    a16, w16 = tf.cast(a, tf.bfloat16), tf.cast(w, tf.bfloat16)
    calls = {
        "float32 MatMul": tf.function(lambda: tf.matmul(a, w)),
        "bfloat16 MatMul (no AVX-512 BF16 here: emulated)": tf.function(lambda: tf.matmul(a16, w16)),
        "int8 QuantizedMatMul (+ quantize, dequantize)": tf.function(lambda: quantized(False)),
    }
    result: dict[str, Any] = {}
    try:
        fused = tf.function(lambda: quantized(True))
        fused().numpy()
        calls["int8 QuantizedMatMulWithBiasAndDequantize"] = fused
    except Exception as error:  # no CPU kernel outside oneDNN's graph rewrite
        result["int8 QuantizedMatMulWithBiasAndDequantize"] = f"does not run: {str(error).splitlines()[0][:160]}"
    for call in calls.values():
        call()
    seconds = interleaved({name: lambda _, c=call: c().numpy() for name, call in calls.items()}, [0], rounds)
    result.update({f"{name} ms": round(float(np.median(s)) * 1e3, 3) for name, s in seconds.items()})
    return result


def interleaved(calls: dict[str, Callable], inputs: list[Any], rounds: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Seconds per call of every path; each round calls every path once, in a shuffled order."""
    rng = random.Random(seed)
    names, seconds = list(calls), {name: [] for name in calls}
    for i in range(rounds):
        rng.shuffle(names)
        for name in names:
            start = time.perf_counter()
            calls[name](inputs[i % len(inputs)])
            seconds[name].append(time.perf_counter() - start)
    return {name: np.array(values) for name, values in seconds.items()}


def profile_pieces(
    encoder: Any, query_tower: Any, scann: Any, num_items: int, texts: list[str], rounds: int
) -> dict[str, dict]:
    """Median ms of each piece of our query path at batch 1 and 64, each in its own tf.function."""
    import tensorflow as tf

    tokenize = tf.function(lambda t: encoder.tokenize(t, 16))
    dense = lambda ids, mask: encoder.pool_tokens(ids, mask, training=False)  # noqa: E731
    # Dynamic shapes, as in the exports: TF's graph runs BERT ~30% slower at a static width.
    tokens_spec = [tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None, None], tf.bool)]
    graph = tf.function(dense, input_signature=tokens_spec)
    xla = tf.function(dense, input_signature=tokens_spec, jit_compile=True)
    project = tf.function(query_tower.project)
    search = tf.function(lambda queries: scann(queries, k=K))
    result = {}
    for batch, repeats in ((1, rounds), (BATCH, max(rounds // 25, 3))):
        inputs = [tf.constant(texts[i : i + batch]) for i in range(0, len(texts), batch)]
        tokens = [tokenize(t) for t in inputs]
        pooled = [graph(*t) for t in tokens]
        queries = [project(p) for p in pooled]
        calls = {
            "tokenize (TF Text + pack + trim)": lambda j: tokenize(inputs[j]),
            "BERT + pooling, graph": lambda j: graph(*tokens[j]),
            "BERT + pooling, XLA": lambda j: xla(*tokens[j]),
            "projection + L2": lambda j: project(pooled[j]),
            f"ScaNN top-{K} of {num_items} items": lambda j: search(queries[j]),
        }
        for call in calls.values():
            call(0)
        seconds = interleaved(calls, list(range(len(inputs))), repeats)
        result[f"batch_{batch}"] = {name: round(float(np.median(s)) * 1e3, 3) for name, s in seconds.items()}
    return result


def summarize(single: dict[str, np.ndarray], batch: dict[str, np.ndarray]) -> dict[str, dict]:
    return {
        name: {
            "p50_ms": round(float(np.median(single[name])) * 1e3, 2),
            "p99_ms": round(float(np.percentile(single[name], 99)) * 1e3, 2),
            "batch64_queries_per_s": round(BATCH / float(np.median(batch[name])), 1),
        }
        for name in single
    }


def targets(paths: dict[str, dict], cosines: dict[str, float]) -> dict[str, dict]:
    """Issue 6's targets for the XLA ScaNN export (ratios to the naive path of the same run)."""
    ours, naive = paths["ours_scann_xla"], paths["naive_scann"]
    checks = {
        "1 query: naive p50 / ours p50 >= 2 (floor)": naive["p50_ms"] / ours["p50_ms"] >= 2,
        "1 query: ours p50 <= 6 ms (goal)": ours["p50_ms"] <= 6,
        "batch 64: ours / naive queries/s >= 1.5 (floor)": ours["batch64_queries_per_s"] / naive["batch64_queries_per_s"] >= 1.5,
        "batch 64: ours >= 150 queries/s (goal)": ours["batch64_queries_per_s"] >= 150,
        "embeddings: cosine to naive >= 0.999": cosines["ours_encoder_xla"] >= 0.999,
    }
    return {name: bool(met) for name, met in checks.items()}


def plot(paths: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(paths)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    p50 = [paths[n]["p50_ms"] for n in names]
    p99 = [paths[n]["p99_ms"] for n in names]
    colors = ["tab:gray" if n.startswith("naive") else "tab:green" if n.startswith("bound") else "tab:blue" for n in names]
    left.barh(names, p50, color=colors, xerr=[[0] * len(names), np.subtract(p99, p50)], capsize=3)
    left.set_xlabel(f"1 query of {QUERY_TOKENS} tokens: p50 ms (whisker: p99)")
    right.barh(names, [paths[n]["batch64_queries_per_s"] for n in names], color=colors)
    right.set_xlabel(f"batches of {BATCH} queries: queries/s")
    right.set_yticklabels([])
    for axis in (left, right):
        axis.invert_yaxis()
        axis.grid(axis="x", alpha=0.3)
    fig.suptitle("Query latency, 1M items: naive keras-hub (grey), exported SavedModels (blue), float32 bound (green)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=200, help="1-query calls per path (after warm-up)")
    parser.add_argument("--batch-rounds", type=int, default=8, help="64-query batches per path")
    parser.add_argument("--export-dir", type=Path, help="keep the exports here (default: a temporary folder)")
    parser.add_argument(
        "--output", type=Path,
        help="JSON report (default: results/query_latency.json; with --sizes-only: results/export_sizes.json)",
    )
    parser.add_argument("--sizes-only", action="store_true", help="build the exports and report their sizes, no timing")
    parser.add_argument(
        "--intra-op-threads", type=int, default=0,
        help="TensorFlow intra-op threads for every path (TF Serving: --tensorflow_intra_op_parallelism); 0: TF's default",
    )
    args = parser.parse_args()
    args.output = args.output or RESULTS / ("export_sizes.json" if args.sizes_only else "query_latency.json")

    import tensorflow as tf
    import tf_keras

    tf.config.threading.set_intra_op_parallelism_threads(args.intra_op_threads)

    from tfrecs_llm.config import EncoderConfig
    from tfrecs_llm.text.presets import resolve_preset
    from tfrecs_llm.text.presets import load_encoder
    from tfrecs_llm.towers import QueryTower

    started, load_before = time.perf_counter(), os.getloadavg()[0]
    export_dir = args.export_dir or Path(tempfile.mkdtemp(prefix="query_latency_"))
    export_dir = export_dir / f"{args.items}_items"
    config = EncoderConfig()
    encoder = load_encoder(config)
    tf_keras.utils.set_random_seed(0)
    query_tower = QueryTower(encoder, EMBEDDING_DIM)
    query_tower({"user_text": tf.constant(["warm up"])})
    if (export_dir / "projection.npz").is_file():  # reused exports: the naive path needs their projection
        saved = np.load(export_dir / "projection.npz")
        query_tower.projection.set_weights([saved["kernel"], saved["bias"]])
    texts = exact_length_texts(encoder.tokenizer, 4 * BATCH)
    print(f"{len(texts)} query texts of exactly {QUERY_TOKENS} tokens", flush=True)

    # A trained two-tower places items where their users' queries land: item clusters are
    # centred on the query embeddings of other texts of the same kind as the measured ones.
    centre_texts = exact_length_texts(encoder.tokenizer, max(args.items // 500, 1), seed=2)
    centres = embed_queries(query_tower, centre_texts)
    ids, embeddings = synthetic_items(args.items, centres=centres)
    export_dir.mkdir(parents=True, exist_ok=True)
    np.savez(export_dir / "projection.npz", **dict(zip(["kernel", "bias"], query_tower.projection.get_weights())))
    # Tuning queries: other texts of the same kind as the measured ones, through the same tower.
    tuning_texts = exact_length_texts(encoder.tokenizer, 512, seed=1)
    tuning_queries = embed_queries(query_tower, tuning_texts)
    paths, scann, index_choices, size_parts = build_exports(query_tower, ids, embeddings, export_dir, tuning_queries)
    sizes = {name: parts["export_mb"] for name, parts in size_parts.items()}
    if args.sizes_only:
        write_sizes(args.output, args.items, index_choices, size_parts, time.perf_counter() - started)
        if args.export_dir is None:
            shutil.rmtree(export_dir.parent, ignore_errors=True)
        return

    calls = {**naive_paths(resolve_preset(config.preset), query_tower.projection, scann, embeddings), **saved_model_paths(paths)}
    calls["bound_fp32_matmuls_only"] = matmul_bound(encoder, scann)
    singles = [tf.constant([t]) for t in texts]
    batches = [tf.constant(texts[i : i + BATCH]) for i in range(0, len(texts), BATCH)]
    print("warming up (XLA compiles one program per input shape) ...", flush=True)
    for call in calls.values():
        call(singles[0]), call(batches[0])
    interleaved(calls, singles, 5, seed=1)

    batch_texts = batches[0]
    naive_embeddings = calls["naive_encoder"](batch_texts)
    cosines = {
        name: float(np.min(np.sum(calls[name](batch_texts) * naive_embeddings, axis=1)))
        for name in ("ours_encoder_xla", "ours_encoder_plain")
    }
    exact_top = ids[np.argsort(-(naive_embeddings @ embeddings.T), axis=1)[:, :K]]
    recalls = {
        name: recall_of(calls[name](batch_texts), exact_top)
        for name in ("naive_scann", "ours_scann_xla", "ours_brute_force_xla")
    }
    print(f"min cosine to naive: {cosines}; recall@{K} vs exact: {recalls}", flush=True)

    print(f"1 query: {args.calls} calls per path ...", flush=True)
    # Exact search streams the 256 MB item table, evicting BERT's weights from the caches: the
    # exact paths take their turns apart from the others.
    groups = [{n: c for n, c in calls.items() if ("exact" in n or "brute" in n) == exact} for exact in (False, True)]
    single = {n: s for group in groups for n, s in interleaved(group, singles, args.calls).items()}
    print(f"batches of {BATCH}: {args.batch_rounds} per path ...", flush=True)
    batch = {n: s for group in groups for n, s in interleaved(group, batches, args.batch_rounds).items()}
    results = summarize(single, batch)
    print("profile of the pieces ...", flush=True)
    pieces = profile_pieces(encoder, query_tower, scann, args.items, texts, rounds=100)

    def ratio(naive: str, ours: str) -> dict[str, float]:
        paired = np.median(single[naive] / single[ours])
        return {
            "p50_speedup": round(results[naive]["p50_ms"] / results[ours]["p50_ms"], 2),
            "paired_median_speedup": round(float(paired), 2),
            "batch64_speedup": round(results[ours]["batch64_queries_per_s"] / results[naive]["batch64_queries_per_s"], 2),
        }

    report = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "setup": {
            "items": args.items, "embedding_dim": EMBEDDING_DIM, "k": K, "query_tokens": QUERY_TOKENS,
            "batch": BATCH, "calls": args.calls, "batch_rounds": args.batch_rounds,
            "encoder": config.preset, "index": index_choices, "export_sizes_mb": sizes,
            "note": "paths are called in turn (shuffled each round) in one process; ours load from disk",
        },
        "paths": results,
        "speedups": {
            "end_to_end_scann (naive_scann / ours_scann_xla)": ratio("naive_scann", "ours_scann_xla"),
            "end_to_end_scann_without_xla (naive_scann / ours_scann_plain)": ratio("naive_scann", "ours_scann_plain"),
            "end_to_end_exact (naive_exact / ours_brute_force_xla)": ratio("naive_exact", "ours_brute_force_xla"),
            "encoder (naive_encoder / ours_encoder_xla)": ratio("naive_encoder", "ours_encoder_xla"),
        },
        "numerics": {"min_cosine_to_naive": cosines, f"recall@{K}_vs_exact_on_{BATCH}_queries": recalls},
        "targets": {**targets(results, cosines), **size_targets(size_parts)},
        "sizes": size_parts,
        "float32_bound": {
            "what": "bound_fp32_matmuls_only: tokenizer + only BERT's matrix products (XLA, real weights) + ScaNN",
            "best_possible_1_query_speedup (naive_scann p50 / bound p50)": round(
                results["naive_scann"]["p50_ms"] / results["bound_fp32_matmuls_only"]["p50_ms"], 2
            ),
            "best_possible_batch64_speedup": round(
                results["bound_fp32_matmuls_only"]["batch64_queries_per_s"] / results["naive_scann"]["batch64_queries_per_s"], 2
            ),
            "reduced_precision_matmul": reduced_precision_matmul(),
        },
        "pieces_median_ms": pieces,
        "machine": {
            "cpus": os.cpu_count(), "platform": platform.platform(), "tensorflow": tf.__version__,
            "intra_inter_op_threads": [
                tf.config.threading.get_intra_op_parallelism_threads(),
                tf.config.threading.get_inter_op_parallelism_threads(),
            ],
            "load_average_1min_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        },
        "seconds": round(time.perf_counter() - started, 1),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2))
    plot(results, args.output.with_suffix(".png"))
    for name, row in results.items():
        print(f"{name:28s} p50 {row['p50_ms']:8.2f} ms  p99 {row['p99_ms']:8.2f} ms  {row['batch64_queries_per_s']:8.1f} q/s")
    print(json.dumps(report["speedups"], indent=1))
    print(f"wrote {args.output} and {args.output.with_suffix('.png')} in {report['seconds']} s")
    if args.export_dir is None:
        shutil.rmtree(export_dir.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
