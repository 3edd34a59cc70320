"""``tfrecs-llm``: train, export and query text two-tower recommenders from the shell.

One module per command (``train``, ``export``, ``recommend``, ``serve``, ``audit``,
``updates`` for add-items and update, ``evaluate``), each with ``add_parser`` and ``run``.
Errors in what the user gave (files, columns, options) print one paragraph and exit with
status 2; TensorFlow is imported only once a command runs, so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from tfrecs_llm.cli import audit, evaluate, export, recommend, serve, train, updates
from tfrecs_llm.cli.common import USER_ERRORS

_COMMANDS = (train, export, recommend, serve, audit, updates, evaluate)


def build_parser() -> argparse.ArgumentParser:
    """The ``tfrecs-llm`` parser with every command registered."""
    parser = argparse.ArgumentParser(
        prog="tfrecs-llm",
        description="Text two-tower recommenders on TensorFlow Recommenders with a pretrained BERT.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in _COMMANDS:
        command.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one command; returns its exit status (2 for an error in what the user gave)."""
    args = build_parser().parse_args(argv)
    # TensorFlow's C++ logs (a CUDA probe failing on a CPU machine, graph-optimizer notes) read
    # like failures; they stay on when the user sets the level.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        return args.run(args)
    except USER_ERRORS as error:
        print(f"tfrecs-llm {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
