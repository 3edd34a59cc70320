"""Re-ranking and explaining retrieved lists with graph-friendly TensorFlow functions."""

from tfrecs_llm.ranking.explain import STOPWORDS, explain, explain_py
from tfrecs_llm.ranking.mmr import mmr_rerank

__all__ = ["STOPWORDS", "explain", "explain_py", "mmr_rerank"]
