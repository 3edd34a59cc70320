"""Public datasets for the quality benchmarks, obtained from the package registry (never committed)."""
