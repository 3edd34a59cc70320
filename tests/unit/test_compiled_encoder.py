"""XLA-compiled BERT inference: same embeddings as the plain encoder, in-process and exported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from tests.conftest import make_tiny_encoder
from tfrecs_llm.config import IndexConfig, ModelConfig
from tfrecs_llm.export.signatures import RecommendModule
from tfrecs_llm.export.tf_serving import SAVE_OPTIONS
from tfrecs_llm.index import build_index
from tfrecs_llm.ranking.stage import RankingStage
from tfrecs_llm.text.compiled import CompiledEncoder, padded_batch_size
from tfrecs_llm.towers import ItemTower, QueryTower

REPO = Path(__file__).parents[2]
# Texts of 1 to 24 words (3 to 26 tokens with [CLS] and [SEP]).
WORDS = "space rocket planet star cooking pasta sauce garden jazz music history mystery".split()
TEXTS = [" ".join(WORDS[: 1 + (7 * i) % 12] * (1 + i % 2)) for i in range(20)]


def test_batches_pad_to_a_power_of_two_then_to_whole_chunks() -> None:
    sizes = [1, 2, 3, 4, 5, 9, 16, 17, 33]
    assert [int(padded_batch_size(n, 16)) for n in sizes] == [1, 2, 4, 4, 8, 16, 16, 32, 48]


def test_bad_chunk_size_is_refused(tiny_encoder) -> None:
    with pytest.raises(ValueError, match="chunk_size must be a power of two"):
        CompiledEncoder(tiny_encoder, chunk_size=12)


class _EmbedModule(tf.Module):
    def __init__(self, encoder) -> None:
        super().__init__()
        self.compiled = CompiledEncoder(encoder)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def embed(self, texts: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"embeddings": self.compiled(texts)}


def _compiled_function_count(export_dir: Path) -> int:
    saved = saved_model_pb2.SavedModel.FromString((export_dir / "saved_model.pb").read_bytes())
    functions = saved.meta_graphs[0].graph_def.library.function
    return sum(f.attr["_XlaMustCompile"].b for f in functions if "_XlaMustCompile" in f.attr)


def test_compiled_encoder_survives_save_and_reload_in_a_fresh_process(tiny_encoder, tmp_path) -> None:
    tiny_encoder.trainable = False
    module = _EmbedModule(tiny_encoder)
    signatures = {"serving_default": module.embed.get_concrete_function()}
    tf.saved_model.save(module, str(tmp_path), signatures=signatures, options=SAVE_OPTIONS)
    assert _compiled_function_count(tmp_path) >= 1
    # BERT is stored once (the checkpoint holds no more values than the module's variables).
    saved = sum(int(np.prod(shape)) for _, shape in tf.train.list_variables(str(tmp_path / "variables" / "variables")))
    assert saved <= sum(v.shape.num_elements() for v in module.variables) + 16

    code = (
        "import json, sys\n"
        "import tfrecs_llm, tensorflow as tf, tensorflow_text\n"
        "model = tf.saved_model.load(sys.argv[1])\n"
        "out = model.signatures['serving_default'](tf.constant(json.loads(sys.argv[2])))\n"
        "print(json.dumps(out['embeddings'].numpy().tolist()))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path), json.dumps(TEXTS)], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    reloaded = np.array(json.loads(result.stdout.strip().splitlines()[-1]))  # 20 texts: two chunks
    np.testing.assert_allclose(reloaded, tiny_encoder(tf.constant(TEXTS)).numpy(), atol=1e-5)


def test_recommend_module_with_jit_compile_serves_the_plain_results() -> None:
    encoder = make_tiny_encoder()
    encoder.trainable = False
    query_tower = QueryTower(encoder, embedding_dim=8)
    query_tower({"user_text": tf.constant(TEXTS[:2])})
    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(40, 8)).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    ids = np.array([f"item-{i}" for i in range(40)])
    index, _ = build_index(ids, embeddings, IndexConfig(kind="brute_force"), k=10)
    texts = [f"{WORDS[i % 12]} {WORDS[(i + 5) % 12]}" for i in range(40)]
    stage = RankingStage(index, None, ids, embeddings, list(ids), texts, num_candidates=10)
    item_tower = ItemTower(list(ids), ModelConfig(embedding_dim=8))
    plain = RecommendModule(query_tower, item_tower, stage, k=5, embeds_items=True)
    compiled = RecommendModule(query_tower, item_tower, stage, k=5, embeds_items=True, jit_compile=True)
    texts = tf.constant(TEXTS[0:6:2])  # 3 texts of <= 7 tokens: width 16, one padded row
    np.testing.assert_allclose(
        compiled.embed_query(texts)["embeddings"].numpy(), plain.embed_query(texts)["embeddings"].numpy(), atol=1e-5
    )
    want, got = plain.serve(texts), compiled.serve(texts)
    for name in ("item_ids", "reasons"):
        np.testing.assert_array_equal(got[name].numpy(), want[name].numpy())


def test_compiled_batch_sizes_are_the_row_counts_of_every_compiled_program() -> None:
    from tfrecs_llm.text.compiled import compiled_batch_sizes

    rows = {min(int(padded_batch_size(n, 16)), 16) for n in range(1, 70)}
    assert compiled_batch_sizes(16) == tuple(sorted(rows))
    assert compiled_batch_sizes(1) == (1,)
