"""Top-k indexes over item embeddings: ScaNN (approximate, CPU) and brute force (exact)."""

from tfrecs_llm.index.builder import IndexChoice, build_index, choose_index, scann_parameters
from tfrecs_llm.index.exclusions import top_k_excluding

__all__ = ["IndexChoice", "build_index", "choose_index", "scann_parameters", "top_k_excluding"]
