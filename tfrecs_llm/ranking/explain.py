"""Explanations grounded in data: the closest item in the user's history, and shared words.

For a recommended item the reason has up to two parts, joined by ``"; "``:

* ``"Because you liked <title>"``: the history item whose embedding has the highest dot product
  with the recommended item's (padding ``-1`` and the item itself ignored; ties go to the
  earlier history position).
* ``"mentions w1, w2, w3"``: up to :data:`MAX_SHARED_WORDS` distinct words that the item's text
  shares with the user text, in the order they first appear in the item text. Words are
  lowercased runs of letters and digits; stopwords and words shorter than 3 characters are
  dropped.

When neither part applies (no usable history and no shared word) the reason is ``""``: there is
nothing in the data to ground an explanation on, and an invented one would mislead.

:func:`explain` uses only core TensorFlow ops (runs inside an exported SavedModel);
:func:`explain_py` is its NumPy reference with the same output. Near-ties in similarity (within
float rounding) may resolve differently between the two.
"""

from __future__ import annotations

import re
from typing import Callable, Sequence

import numpy as np
import tensorflow as tf

MAX_SHARED_WORDS = 3
MIN_WORD_LENGTH = 3
LIKED_PREFIX = "Because you liked "
MENTIONS_PREFIX = "mentions "

STOPWORDS: tuple[str, ...] = (
    "a", "about", "above", "after", "again", "against", "all", "also", "am", "an", "and", "any",
    "are", "as", "at", "be", "because", "been", "before", "being", "below", "between", "both",
    "but", "by", "can", "could", "did", "do", "does", "doing", "down", "during", "each", "few",
    "for", "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers",
    "herself", "him", "himself", "his", "how", "into", "its", "itself", "just", "like", "love",
    "more", "most", "much", "myself", "nor", "not", "now", "off", "once", "only", "other", "our",
    "ours", "out", "over", "own", "same", "she", "should", "some", "such", "than", "that", "the",
    "their", "theirs", "them", "then", "there", "these", "they", "this", "those", "through", "too",
    "under", "until", "very", "was", "were", "what", "when", "where", "which", "while", "who",
    "whom", "why", "will", "with", "would", "you", "your", "yours", "yourself",
)  # fmt: skip
"""Default English stopwords (lowercase); words under 3 characters are dropped anyway."""

# Letters and digits of any script; Python's ``[\W_]`` is the same class for ``re.split``.
_NON_WORD_TF = r"[^\pL\pN]+"
_NON_WORD_PY = re.compile(r"[\W_]+")


def _words(texts: tf.Tensor) -> tf.RaggedTensor:
    """Lowercased words of each string: ``texts.shape + [(num_words)]``."""
    lowered = tf.strings.lower(texts, encoding="utf-8")
    return tf.strings.split(tf.strings.regex_replace(lowered, _NON_WORD_TF, " "))


def _titles_of(
    rows: tf.Tensor, titles: tf.Tensor | None, texts: tf.Tensor, title_lengths: tf.Tensor | None
) -> tf.Tensor:
    """Titles of ``rows`` (any shape): gathered, or cut from the texts they start."""
    if titles is not None:
        return tf.gather(titles, rows)
    lengths = tf.gather(title_lengths, rows)
    return tf.strings.substr(tf.gather(texts, rows), tf.zeros_like(lengths), lengths, unit="BYTE")


def _liked_titles(
    rec: tf.Tensor, history: tf.Tensor, embeddings: tf.Tensor, title_of: Callable[[tf.Tensor], tf.Tensor]
) -> tf.Tensor:
    """``"Because you liked <title>"`` or ``""`` per recommendation: [batch, k] string."""
    # One extra padding slot gives every row a (masked) history entry, also when h = 0.
    history = tf.pad(history, [[0, 0], [0, 1]], constant_values=-1)
    similarity = tf.einsum(
        "bkd,bhd->bkh", tf.gather(embeddings, rec), tf.gather(embeddings, tf.maximum(history, 0))
    )
    usable = (history >= 0)[:, tf.newaxis, :] & (history[:, tf.newaxis, :] != rec[:, :, tf.newaxis])
    similarity = tf.where(usable, similarity, float("-inf"))
    # top_k returns the earlier position among equal values, unlike argmax.
    best = tf.math.top_k(similarity, k=1).indices[:, :, 0]
    liked = title_of(tf.maximum(tf.gather(history, best, batch_dims=1), 0))
    return tf.where(tf.reduce_any(usable, axis=-1), tf.strings.join([LIKED_PREFIX, liked]), "")


def _content_words(user_text: tf.Tensor, stopwords: tf.Tensor) -> tf.RaggedTensor:
    """The user's words that may be shared: [batch, (num_words)], no stopwords or short words."""
    words = _words(user_text)
    flat = words.flat_values
    is_stopword = tf.reduce_any(tf.equal(flat[:, tf.newaxis], stopwords[tf.newaxis, :]), axis=-1)
    long_enough = tf.strings.length(flat, unit="UTF8_CHAR") >= MIN_WORD_LENGTH
    return tf.ragged.boolean_mask(words, words.with_flat_values(long_enough & ~is_stopword))


def _mentions(rec: tf.Tensor, texts: tf.Tensor, user_words: tf.RaggedTensor) -> tf.Tensor:
    """``"mentions w1, w2"`` or ``""`` per recommendation: [batch, k] string."""
    # Flat over [batch * k] recommendations: rank-2 sets, also well-defined for an empty batch.
    item_words = _words(tf.gather(texts, tf.reshape(rec, [-1])))  # [batch * k, (w)]
    batch_of_rec = tf.zeros_like(rec) + tf.range(tf.shape(rec)[0])[:, tf.newaxis]
    user_words = tf.gather(user_words, tf.reshape(batch_of_rec, [-1]))  # [batch * k, (u)]
    shared = tf.sets.intersection(item_words.to_sparse(), user_words.to_sparse())  # sorted
    num_shared = tf.minimum(tf.reshape(tf.sets.size(shared), [-1]), MAX_SHARED_WORDS)
    shared = tf.sparse.to_dense(shared, default_value="")  # [batch * k, n]; words are never ""

    # Order the shared words by their first position in the item text (padding goes last).
    item_words = item_words.to_tensor(default_value="")  # [batch * k, w]
    width = tf.shape(item_words)[-1]
    matches = tf.equal(shared[:, :, tf.newaxis], item_words[:, tf.newaxis, :])
    matches &= (shared != "")[:, :, tf.newaxis]
    first_position = tf.reduce_min(tf.where(matches, tf.range(width), width), axis=-1)
    order = tf.argsort(first_position, axis=-1, stable=True)[:, :MAX_SHARED_WORDS]
    shared = tf.RaggedTensor.from_tensor(tf.gather(shared, order, batch_dims=1), lengths=num_shared)
    joined = tf.strings.reduce_join(shared, axis=-1, separator=", ")
    mentions = tf.where(num_shared > 0, tf.strings.join([MENTIONS_PREFIX, joined]), "")
    return tf.reshape(mentions, tf.shape(rec))


def explain(
    rec_item_rows: tf.Tensor,
    history_item_rows: tf.Tensor,
    item_embeddings: tf.Tensor,
    item_titles: tf.Tensor | Sequence[str] | None,
    item_texts: tf.Tensor,
    user_text: tf.Tensor,
    stopwords: tf.Tensor | Sequence[str] = STOPWORDS,
    item_title_lengths: tf.Tensor | None = None,
) -> tf.Tensor:
    """One grounded reason per recommendation (core TensorFlow ops only, batched).

    Args:
      rec_item_rows: [batch, k] int32 catalog rows of the recommended items.
      history_item_rows: [batch, h] int32 catalog rows the user interacted with, padded with -1.
      item_embeddings: [num_items, dim] unit-norm item embeddings.
      item_titles: [num_items] string, or None when ``item_title_lengths`` is given.
      item_texts: [num_items] string, the text an item is known by (``title. description``,
        as built by :func:`tfrecs_llm.data.item_text.item_texts`).
      user_text: [batch] string, the text the query tower read for each user.
      stopwords: [num_stopwords] string words never reported as shared.
      item_title_lengths: [num_items] int32, instead of ``item_titles`` when every text starts
        with its title: the title's length in UTF-8 bytes (only the titles a reason names are
        cut from their texts).

    Returns:
      [batch, k] string reasons, ``""`` where nothing in the data grounds one.
    """
    rec = tf.convert_to_tensor(rec_item_rows, tf.int32)
    history = tf.convert_to_tensor(history_item_rows, tf.int32)
    user_text = tf.convert_to_tensor(user_text, tf.string)
    stopwords = tf.strings.lower(tf.convert_to_tensor(stopwords, tf.string), encoding="utf-8")
    batch = tf.shape(rec)[0]
    checks = [
        tf.debugging.assert_equal(
            tf.shape(history)[0], batch, message="history_item_rows batch != rec_item_rows batch"
        ),
        tf.debugging.assert_equal(
            tf.shape(user_text)[0], batch, message="user_text batch != rec_item_rows batch"
        ),
    ]
    with tf.control_dependencies(checks):
        rec = tf.identity(rec)
    if (item_titles is None) == (item_title_lengths is None):
        raise ValueError("explain: pass exactly one of item_titles and item_title_lengths")
    texts = tf.convert_to_tensor(item_texts, tf.string)
    titles = None if item_titles is None else tf.convert_to_tensor(item_titles, tf.string)
    lengths = None if item_title_lengths is None else tf.convert_to_tensor(item_title_lengths, tf.int32)
    title_of = lambda rows: _titles_of(rows, titles, texts, lengths)  # noqa: E731
    liked = _liked_titles(rec, history, tf.convert_to_tensor(item_embeddings), title_of)
    user_words = _content_words(user_text, stopwords)
    mentions = _mentions(rec, texts, user_words)
    separator = tf.where((liked != "") & (mentions != ""), "; ", "")
    return tf.strings.join([liked, separator, mentions])


def _words_py(text: str) -> list[str]:
    return [word for word in _NON_WORD_PY.split(text.lower()) if word]


def explain_py(
    rec_item_rows: np.ndarray,
    history_item_rows: np.ndarray,
    item_embeddings: np.ndarray,
    item_titles: Sequence[str],
    item_texts: Sequence[str],
    user_text: Sequence[str],
    stopwords: Sequence[str] = STOPWORDS,
) -> list[list[str]]:
    """NumPy reference of :func:`explain` with the same arguments; returns [batch][k] reasons."""
    embeddings = np.asarray(item_embeddings)
    stop = {word.lower() for word in stopwords}
    reasons = []
    rows = zip(np.asarray(rec_item_rows), np.asarray(history_item_rows), user_text, strict=True)
    for recs, history, text in rows:
        user_words = {w for w in _words_py(text) if len(w) >= MIN_WORD_LENGTH and w not in stop}
        row = []
        for item in recs:
            parts = []
            candidates = [h for h in history if h >= 0 and h != item]
            if candidates:
                best = candidates[int(np.argmax(embeddings[candidates] @ embeddings[item]))]
                parts.append(LIKED_PREFIX + item_titles[best])
            shared = list(dict.fromkeys(w for w in _words_py(item_texts[item]) if w in user_words))
            if shared:
                parts.append(MENTIONS_PREFIX + ", ".join(shared[:MAX_SHARED_WORDS]))
            row.append("; ".join(parts))
        reasons.append(row)
    return reasons
