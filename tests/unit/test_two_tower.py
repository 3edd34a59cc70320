"""Training, resuming, saving and recommending with the two-tower model (tiny BERT)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import make_tiny_encoder
from tests.unit.tiny_data import tiny_split
from tfrecs_llm.recommender import Recommender
from tfrecs_llm.config import Config


@pytest.fixture(scope="module")
def tables():
    return tiny_split()


def _config(**overrides) -> Config:
    base = {"train.epochs": 3, "train.batch_size": 32, "encoder.sequence_length": 32}
    base.update(overrides)
    return Config().with_overrides(base)


@pytest.fixture(scope="module")
def trained(tables) -> Recommender:
    items, train, _ = tables
    return Recommender.train(items, train, _config(), encoder=make_tiny_encoder(), verbose=False)


def test_trained_model_beats_popularity_on_topic_data(trained, tables) -> None:
    _, train, test = tables
    metrics = trained.evaluate(train, test)
    assert metrics["model"]["recall@10"] > metrics["popularity"]["recall@10"] + 0.2


def test_recommend_excludes_items_and_orders_by_score(trained) -> None:
    [recs] = trained.recommend(["space rocket planet"], k=5, exclude_item_ids=[["space-0", "space-1"]])
    ids = [item for item, _ in recs]
    scores = [score for _, score in recs]
    assert len(ids) == 5 and not {"space-0", "space-1"} & set(ids)
    assert scores == sorted(scores, reverse=True)


def test_recommend_rejects_bad_arguments(trained) -> None:
    with pytest.raises(ValueError, match="k must be between 1 and"):
        trained.recommend(["space"], k=10_000)
    with pytest.raises(ValueError, match="exclude_item_ids has 2 lists for 1 user texts"):
        trained.recommend(["space"], k=3, exclude_item_ids=[[], []])
    with pytest.raises(TypeError, match="list of strings"):
        trained.recommend("space", k=3)


def test_save_and_load_give_identical_recommendations(trained, tmp_path) -> None:
    path = trained.save(tmp_path / "model")
    loaded = Recommender.load(path, encoder=make_tiny_encoder(seed=123))
    texts = ["jazz music", "pasta sauce ; cooking garden 3"]
    for got, want in zip(loaded.recommend(texts, k=4), trained.recommend(texts, k=4)):
        assert [i for i, _ in got] == [i for i, _ in want]
        np.testing.assert_allclose([s for _, s in got], [s for _, s in want], atol=1e-5)
    # The training user-text sample that ScaNN tunes on travels with the model.
    assert loaded.query_sample == trained.query_sample and len(trained.query_sample) > 10


def test_load_rejects_a_folder_that_is_not_a_model(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="not a saved tfrecs_llm model"):
        Recommender.load(tmp_path)


def test_unknown_item_embeds_from_text_through_the_oov_bucket(trained) -> None:
    catalog = trained.catalog
    features = catalog.features(np.arange(len(catalog.item_ids)))
    features["item_id"] = np.array(["never-seen"] * len(catalog.item_ids))
    embeddings = trained.model.item_tower(features, training=False).numpy()
    assert np.isfinite(embeddings).all()
    assert np.allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    # Text still separates items although every id is unknown.
    assert np.unique(embeddings.round(4), axis=0).shape[0] == len(catalog.item_ids)


def test_bag_of_words_item_encoder_trains(tables) -> None:
    items, train, test = tables
    config = _config(**{"model.item_text_encoder": "bag_of_words"})
    recommender = Recommender.train(items, train, config, encoder=make_tiny_encoder(), verbose=False)
    assert recommender.catalog.text_embeddings is None
    metrics = recommender.evaluate(train, test)
    # Three topics of users and items: the descriptions' words tell them apart, popularity cannot.
    assert metrics["model"]["recall@10"] > 1.5 * metrics["popularity"]["recall@10"], metrics


def test_training_resumes_from_the_latest_checkpoint(tables, tmp_path) -> None:
    items, train, _ = tables
    ckpt = tmp_path / "ckpt"
    config = _config(**{"train.epochs": 1, "encoder.trainable": "full"})
    first = Recommender.train(items, train, config, checkpoint_dir=ckpt, encoder=make_tiny_encoder(), verbose=False)
    bert_after_first = first.encoder.backbone.token_embedding.embeddings.numpy().copy()
    head_after_first = first.model.query_tower.projection.kernel.numpy().copy()
    steps_after_first = int(first.model.optimizer.iterations.numpy())
    assert not np.allclose(bert_after_first, make_tiny_encoder().backbone.token_embedding.embeddings.numpy())

    # Same run asked for 1 epoch again: everything is restored and no step is taken.
    again = Recommender.train(items, train, config, checkpoint_dir=ckpt, encoder=make_tiny_encoder(), verbose=False)
    np.testing.assert_array_equal(again.encoder.backbone.token_embedding.embeddings.numpy(), bert_after_first)
    np.testing.assert_array_equal(again.model.query_tower.projection.kernel.numpy(), head_after_first)

    # Asked for 2 epochs: continues from epoch 1, with the optimizer's state restored.
    longer = Recommender.train(
        items, train, config.with_overrides({"train.epochs": 2}), checkpoint_dir=ckpt,
        encoder=make_tiny_encoder(), verbose=False,
    )
    assert int(longer.model.optimizer.iterations.numpy()) == 2 * steps_after_first
    assert not np.allclose(longer.encoder.backbone.token_embedding.embeddings.numpy(), bert_after_first)


def test_items_without_training_events_embed_like_fresh_items(tables) -> None:
    """An id that never trained must not carry a random embedding: it uses the OOV bucket, the
    same vector a fresh item with the same text gets."""
    items, train, _ = tables
    cold = "space-7"
    recommender = Recommender.train(
        items, train[train["item_id"] != cold], _config(**{"train.epochs": 1}),
        encoder=make_tiny_encoder(), verbose=False,
    )
    assert cold not in set(recommender.catalog.id_vocabulary)
    row = int(recommender.catalog.rows_of([cold])[0])
    features = recommender.catalog.features(np.array([row]))
    as_fresh = {**features, "item_id": np.array(["never-seen-id"])}
    tower = recommender.model.item_tower
    np.testing.assert_allclose(tower(features).numpy(), tower(as_fresh).numpy(), atol=1e-6)


def test_training_logs_only_losses_that_exist(trained) -> None:
    """Without regularizers TFRS would log regularization_loss 0 and total_loss == loss every
    epoch; with one, both are real and stay."""
    import tensorflow as tf
    import tf_keras

    from tfrecs_llm.models.base import Model

    assert set(trained.training_history) == {"loss"}

    class Tiny(Model):
        def __init__(self, penalty: float) -> None:
            super().__init__()
            regularizer = tf_keras.regularizers.L2(penalty) if penalty else None
            self.dense = tf_keras.layers.Dense(1, kernel_regularizer=regularizer)

        def compute_loss(self, inputs, training: bool = False) -> tf.Tensor:
            return tf.reduce_mean(tf.square(self.dense(inputs) - 1.0))

    logs = {}
    for penalty in (0.0, 0.1):
        model = Tiny(penalty)
        model.compile(optimizer=tf_keras.optimizers.legacy.SGD(0.1))
        logs[penalty] = model.fit(tf.ones([8, 2]), epochs=1, verbose=0).history
    assert set(logs[0.0]) == {"loss"}
    assert set(logs[0.1]) == {"loss", "regularization_loss", "total_loss"} and logs[0.1]["regularization_loss"][0] > 0
