"""Fine-tuning modes: which BERT weights a training step moves, config errors, save/load/export."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from tests.conftest import make_tiny_encoder
from tests.unit.tiny_data import tiny_split
from tfrecs_llm.recommender import Recommender
from tfrecs_llm.config import Config, EncoderConfig
from tfrecs_llm.data.user_text import UserTextBuilder
from tfrecs_llm.data.pipeline import make_dataset
from tfrecs_llm.data.catalog import Catalog
from tfrecs_llm.text.finetune import apply_finetune_mode
from tfrecs_llm.text.preprocessing import tokenize_in_pipeline
from tfrecs_llm.towers import QueryTower
from tfrecs_llm.training.retrieval import example_features, training_examples

TEXTS = tf.constant(["space rocket planet", "pasta sauce cooking", "jazz music history"])


def _moved_after_training(config: EncoderConfig) -> tuple[set[str], set[str]]:
    """Two Adam steps on a query tower over the tiny BERT in ``config``'s mode.

    Returns (paths of BERT variables that changed, all BERT variable paths). Two steps, because
    LoRA's B factor starts at zero, so A only receives a gradient from the second step on. Adam
    with a tiny epsilon moves every variable whose gradient is not exactly zero by about the
    learning rate (the random tiny BERT's attention gradients are ~1e-10).
    """
    encoder = make_tiny_encoder()
    apply_finetune_mode(encoder, config)
    tower = QueryTower(encoder, embedding_dim=8)
    tower({"user_text": TEXTS})
    weights = encoder.backbone.weights
    before = [v.numpy().copy() for v in weights]
    head_before = tower.projection.kernel.numpy().copy()
    optimizer = tf_keras.optimizers.legacy.Adam(1e-2, epsilon=1e-15)
    for _ in range(2):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tower({"user_text": TEXTS}, training=True)[:, 0])
        grads = tape.gradient(loss, tower.trainable_variables)
        optimizer.apply_gradients(zip(grads, tower.trainable_variables))
    assert not np.allclose(head_before, tower.projection.kernel.numpy()), "the head must always train"
    moved = {v.path for v, old in zip(weights, before) if not np.array_equal(old, v.numpy())}
    return moved, {v.path for v in weights}


def test_frozen_moves_no_bert_weight() -> None:
    moved, _ = _moved_after_training(EncoderConfig(trainable="frozen"))
    assert moved == set()


def test_full_moves_every_bert_weight_but_the_unused_pooler() -> None:
    moved, paths = _moved_after_training(EncoderConfig(trainable="full"))
    assert moved == {p for p in paths if not p.startswith("pooled_dense/")}


def test_top_layers_moves_only_the_top_transformer_layer() -> None:
    # The tiny BERT has 2 layers: top 1 = transformer_layer_1; embeddings and layer 0 stay.
    moved, paths = _moved_after_training(EncoderConfig(trainable="top_layers", trainable_layers=1))
    assert moved == {p for p in paths if p.startswith("transformer_layer_1/")}


def test_lora_moves_only_the_lora_factors() -> None:
    moved, paths = _moved_after_training(EncoderConfig(trainable="lora", lora_rank=2))
    lora = {p for p in paths if p.endswith(("/lora_kernel_a", "/lora_kernel_b"))}
    # keras-hub puts adapters on the query and value projections of both layers.
    assert len(lora) == 2 * 2 * 2
    assert moved == lora


def test_lora_factors_are_tracked_and_few() -> None:
    encoder = make_tiny_encoder()
    trained = apply_finetune_mode(encoder, EncoderConfig(trainable="lora", lora_rank=2))
    tracked = {v.ref() for v in encoder.weights}
    assert trained and all(v.ref() in tracked for v in trained)
    assert [v.ref() for v in encoder.trainable_weights] == [v.ref() for v in trained]
    lora_params = sum(v.shape.num_elements() for v in trained)
    bert_params = sum(int(np.prod(v.shape)) for v in encoder.backbone.weights) - lora_params
    assert lora_params < bert_params / 10


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("encoder.trainable", "half", "encoder.trainable must be one of .*top_layers.*lora"),
        ("encoder.trainable_layers", 0, "encoder.trainable_layers must be an integer >= 1"),
        ("encoder.lora_rank", 2.5, "encoder.lora_rank must be an integer >= 1"),
        ("encoder.mixed_precision", "yes", "encoder.mixed_precision must be true or false"),
    ],
)
def test_bad_fine_tuning_config_is_named(key, value, message) -> None:
    with pytest.raises(ValueError, match=message):
        Config().with_overrides({key: value})


def test_more_top_layers_than_bert_has_is_refused() -> None:
    with pytest.raises(ValueError, match="encoder.trainable_layers=3 exceeds the 2 transformer layers"):
        apply_finetune_mode(make_tiny_encoder(), EncoderConfig(trainable="top_layers", trainable_layers=3))


def test_lora_encoder_refuses_another_mode_or_rank() -> None:
    encoder = make_tiny_encoder()
    apply_finetune_mode(encoder, EncoderConfig(trainable="lora", lora_rank=2))
    with pytest.raises(ValueError, match="encoder.lora_rank=3, but this encoder already has LoRA adapters of rank 2"):
        apply_finetune_mode(encoder, EncoderConfig(trainable="lora", lora_rank=3))
    with pytest.raises(ValueError, match="encoder.trainable='full', but this encoder has LoRA adapters"):
        apply_finetune_mode(encoder, EncoderConfig(trainable="full"))


def test_pipeline_tokenization_feeds_bert_the_same_tokens() -> None:
    encoder = make_tiny_encoder()
    apply_finetune_mode(encoder, EncoderConfig(trainable="full"))
    tower = QueryTower(encoder, embedding_dim=8)
    texts = np.array(["space rocket planet", "a much longer text about jazz music history", "pasta"])
    [batch] = list(tokenize_in_pipeline(make_dataset({"user_text": texts}, 3, shuffle=False), encoder))
    width = batch["user_token_ids"].shape[1]
    assert batch["user_padding_mask"].shape == (3, width) and width < encoder.sequence_length
    from_tokens = tower(batch).numpy()
    np.testing.assert_allclose(from_tokens, tower({"user_text": tf.constant(texts)}).numpy(), atol=1e-6)


@pytest.fixture(scope="module")
def tables():
    return tiny_split(num_users=30)


def _config(**overrides) -> Config:
    base = {"train.epochs": 1, "train.batch_size": 32, "encoder.sequence_length": 32,
            "train.encoder_learning_rate": 1e-2, "ranking.enabled": False}
    base.update(overrides)
    return Config().with_overrides(base)


@pytest.mark.skipif(bool(tf.config.list_physical_devices("GPU")), reason="checks the CPU-only refusal")
def test_mixed_precision_training_is_refused_without_a_gpu(tables) -> None:
    items, train, _ = tables
    config = _config(**{"encoder.mixed_precision": True})
    with pytest.raises(ValueError, match="encoder.mixed_precision=true needs a GPU"):
        Recommender.train(items, train, config, encoder=make_tiny_encoder(), verbose=False)


def test_mixed_bfloat16_bert_feeds_float32_heads() -> None:
    # What encoder.mixed_precision builds on a GPU, run on CPU: bfloat16 BERT, float32 tower.
    import keras

    reference = make_tiny_encoder()
    mixed = make_tiny_encoder()
    mixed_backbone = type(mixed.backbone).from_config({**mixed.backbone.get_config(), "dtype": "mixed_bfloat16"})
    mixed_backbone.set_weights(reference.backbone.get_weights())
    assert keras.backend.standardize_dtype(mixed_backbone.compute_dtype) == "bfloat16"
    mixed = type(mixed)(mixed_backbone, mixed.tokenizer, sequence_length=32)
    tower = QueryTower(mixed, embedding_dim=8)
    embeddings = tower({"user_text": TEXTS})
    assert embeddings.dtype == tf.float32
    np.testing.assert_allclose(mixed(TEXTS).numpy().astype(np.float32), reference(TEXTS).numpy(), atol=0.1)


def test_only_a_frozen_encoder_caches_user_text_embeddings(tables) -> None:
    items, train, _ = tables
    catalog = Catalog.build(items)
    for mode, cached in [("frozen", True), ("full", False), ("top_layers", False), ("lora", False)]:
        config = _config(**{"encoder.trainable": mode, "encoder.trainable_layers": 1})
        encoder = make_tiny_encoder()
        apply_finetune_mode(encoder, config.encoder)
        examples = training_examples(train, UserTextBuilder.from_config(items, config.data), config)
        features = example_features(examples, catalog, encoder, config, verbose=False)
        assert ("user_text_embedding" in features) == cached, mode


def test_lora_model_saves_loads_and_exports_with_its_adapters(tables, tmp_path) -> None:
    items, train, _ = tables
    config = _config(**{"encoder.trainable": "lora", "encoder.lora_rank": 2})
    trained = Recommender.train(items, train, config, encoder=make_tiny_encoder(), verbose=False)
    lora_b = [v for v in trained.encoder.backbone.weights if v.path.endswith("/lora_kernel_b")]
    assert lora_b and all(np.abs(v.numpy()).max() > 0 for v in lora_b), "training must move LoRA"
    texts = ["space rocket planet", "a long text about jazz music history and pasta"]
    expected = trained.query_embeddings(texts)

    loaded = Recommender.load(trained.save(tmp_path / "model"), encoder=make_tiny_encoder())
    loaded_b = {v.path: v.numpy() for v in loaded.encoder.backbone.weights if v.path.endswith("/lora_kernel_b")}
    for v in lora_b:
        np.testing.assert_array_equal(loaded_b[v.path], v.numpy())
    np.testing.assert_allclose(loaded.query_embeddings(texts), expected, atol=1e-6)


@pytest.mark.parametrize(
    "mode, overrides",
    [("full", {}), ("top_layers", {"encoder.trainable_layers": 1}), ("lora", {"encoder.lora_rank": 2})],
)
def test_fine_tuned_models_export_and_answer_like_in_process(tables, tmp_path, mode, overrides) -> None:
    items, train, _ = tables
    config = _config(**{"encoder.trainable": mode, **overrides})
    trained = Recommender.train(items, train, config, encoder=make_tiny_encoder(), verbose=False)
    texts = ["space rocket planet", "a long text about jazz music history and pasta", ""]
    path = trained.export(tmp_path, mode, index_kind="brute_force", k=5)
    loaded = tf.saved_model.load(str(path))
    served = loaded.signatures["serving_default"](user_text=tf.constant(texts))
    in_process = trained.recommend(texts, k=5)
    assert [[i.decode() for i in row] for row in served["item_ids"].numpy()] == [[i for i, _ in r] for r in in_process]
    np.testing.assert_allclose(served["scores"].numpy(), [[s for _, s in r] for r in in_process], atol=1e-4)
    embedded = loaded.signatures["embed_query"](user_text=tf.constant(texts))
    np.testing.assert_allclose(embedded["embeddings"].numpy(), trained.query_embeddings(texts), atol=1e-5)
