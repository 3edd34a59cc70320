"""The bundled all-MiniLM-L6-v2, run through keras-hub inside tfrecs_llm, equals the model's own
implementation (sentence-transformers on PyTorch; vectors in tests/fixtures, made by
tests/fixtures/make_minilm_reference.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tfrecs_llm.config import EncoderConfig
from tfrecs_llm.text.presets import load_encoder

pytestmark = pytest.mark.integration

REFERENCE = json.loads((Path(__file__).parents[1] / "fixtures" / "minilm_reference.json").read_text())


def test_embeddings_match_sentence_transformers() -> None:
    config = EncoderConfig(sequence_length=REFERENCE["max_seq_length"])
    encoder = load_encoder(config, normalize=True)
    ours = encoder(tf.constant(REFERENCE["sentences"])).numpy()
    expected = np.asarray(REFERENCE["embeddings"], np.float32)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    cosines = (ours * expected).sum(axis=1)
    for sentence, cosine in zip(REFERENCE["sentences"], cosines):
        assert cosine >= 0.999, f"{sentence[:40]!r}: cosine {cosine:.6f}"


def test_truncation_keeps_the_first_tokens_and_sep() -> None:
    encoder = load_encoder(EncoderConfig(sequence_length=16))
    long_text = REFERENCE["sentences"][-1]
    token_ids, mask = encoder.tokenize(tf.constant([long_text]))
    assert token_ids.shape == (1, 16)
    assert int(token_ids[0, 0]) == encoder.tokenizer.cls_token_id
    assert int(token_ids[0, -1]) == encoder.tokenizer.sep_token_id
    assert bool(tf.reduce_all(mask))
