"""Top-k indexes over item embeddings: ScaNN (approximate, CPU) and brute force (exact)."""

from tfrecs_llm.index.builder import IndexChoice, build_index, choose_index
from tfrecs_llm.index.exclusions import top_k_excluding
from tfrecs_llm.index.scann_layer import ScannIndex
from tfrecs_llm.index.tuning import ScannSettings, sample_texts, scann_parameters, scann_settings, tunes_search

__all__ = [
    "IndexChoice",
    "ScannIndex",
    "ScannSettings",
    "build_index",
    "choose_index",
    "scann_parameters",
    "sample_texts",
    "scann_settings",
    "top_k_excluding",
    "tunes_search",
]
