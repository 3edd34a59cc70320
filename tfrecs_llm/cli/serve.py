"""``tfrecs-llm serve``: exports served with TF Serving's REST/gRPC API, feedback, live versions."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Registers ``serve`` on the ``tfrecs-llm`` subcommand parsers."""
    serve = commands.add_parser(
        "serve", help="serve exports locally with TF Serving's REST/gRPC API, feedback and live version updates"
    )
    serve.add_argument("--model_base_path", required=True,
                       help="folder holding the integer version folders, e.g. saved_models/demo (as in TF Serving)")
    serve.add_argument("--model_name", help="name in request URLs (default: the folder's name)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; no authentication)")
    serve.add_argument("--rest_api_port", type=int, default=8501, help="REST port (default 8501, as TF Serving)")
    serve.add_argument("--port", type=int, help="gRPC PredictionService port (TF Serving uses 8500); off by default")
    serve.add_argument("--file_system_poll_wait_seconds", type=float, default=2.0,
                       help="how often to look for new versions (default 2)")
    serve.add_argument("--keep_versions", type=int,
                       help="delete all but the newest N version folders once not served (default: keep all)")
    serve.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """``tfrecs-llm serve``: serves until interrupted."""
    missing = [name for name in ("fastapi", "uvicorn", "httpx") if importlib.util.find_spec(name) is None]
    if missing:
        raise ValueError(
            f"serve needs the 'serving' extra ({', '.join(missing)} not installed): "
            "pip install 'tfrecs_llm[serving]' (or -e '.[serving]' from a clone)"
        )
    from tfrecs_llm.serving import serve

    base = Path(args.model_base_path)
    if not base.is_dir():
        raise FileNotFoundError(f"--model_base_path {base} is not a directory; expected e.g. saved_models/demo")
    serve(
        base,
        args.model_name or base.name,
        host=args.host,
        rest_port=args.rest_api_port,
        grpc_port=args.port,
        poll_seconds=args.file_system_poll_wait_seconds,
        keep_versions=args.keep_versions,
    )
    return 0
