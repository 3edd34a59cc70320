"""Shared fixtures: a tiny random BERT (fast unit tests) and small tables."""

from __future__ import annotations

import string

import pytest

import tfrecs_llm  # noqa: F401  (selects Keras 2 for tf.keras before TensorFlow loads)

_WORDS = (
    "the a of and to in for on with about space star rocket planet cooking pasta sauce garden "
    "flower jazz music mystery detective hiking mountain finance money history rome"
).split()


def make_tiny_encoder(sequence_length: int = 32, seed: int = 0):
    """A 2-layer, 16-wide random BERT with a small WordPiece vocabulary (any lowercase text)."""
    import keras
    import keras_hub

    from tfrecs_llm.text.encoder import TextEncoder

    keras.utils.set_random_seed(seed)
    letters = list(string.ascii_lowercase + string.digits)
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *string.punctuation, *letters]
    vocabulary = list(dict.fromkeys(vocabulary + [f"##{c}" for c in letters] + _WORDS))
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocabulary, lowercase=True)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=len(vocabulary),
        num_layers=2,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=sequence_length,
    )
    return TextEncoder(backbone, tokenizer, sequence_length=sequence_length)


def save_tiny_preset(directory, sequence_length: int = 32):
    """Writes the tiny BERT as a keras-hub preset directory (for ``encoder.preset`` in CLI runs);
    returns the directory."""
    encoder = make_tiny_encoder(sequence_length=sequence_length)
    encoder.backbone.save_to_preset(str(directory))
    encoder.tokenizer.save_to_preset(str(directory))
    return directory


@pytest.fixture
def tiny_encoder():
    return make_tiny_encoder()


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL on loopback for the whole run (see tests/postgres_server.py); yields its URL."""
    from tests.postgres_server import running_postgres

    with running_postgres("fsync=off") as url:
        yield url


_databases = iter(range(1, 1_000_000))


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """A new, empty database on the session's PostgreSQL."""
    from tests.postgres_server import fresh_database

    return fresh_database(postgres_server, f"test_{next(_databases)}")
