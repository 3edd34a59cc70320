"""``make bench``: runs every benchmark in turn; each writes JSON (and PNG) under results/."""

from __future__ import annotations

import subprocess
import sys

BENCHMARKS = [
    ["benchmarks.ranking_tradeoff"],
    ["benchmarks.load_test", "--seconds", "20"],
    ["benchmarks.index_speed"],
    ["benchmarks.query_latency"],
    ["benchmarks.training_speed"],  # ~10 CPU-minutes; `--quick`: ~3
]


def main() -> int:
    failed = []
    for module, *args in BENCHMARKS:
        print(f"== {module} {' '.join(args)}", flush=True)
        if subprocess.run([sys.executable, "-m", module, *args]).returncode != 0:
            failed.append(module)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
