"""``tfrecs-llm serve``: exports served with TF Serving's REST/gRPC API, feedback, live versions."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

from tfrecs_llm.serving.limits import RequestLimits


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Registers ``serve`` on the ``tfrecs-llm`` subcommand parsers (TF Serving's spellings of
    its flags, ``--model_base_path`` etc., are accepted too)."""
    serve = commands.add_parser(
        "serve", help="serve exports locally with TF Serving's REST/gRPC API, feedback and live version updates"
    )
    serve.add_argument("--model-base-path", "--model_base_path", dest="model_base_path", required=True,
                       help="folder holding the integer version folders, e.g. saved_models/demo (as in TF Serving)")
    serve.add_argument("--model-name", "--model_name", dest="model_name",
                       help="name in request URLs (default: the folder's name)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; no authentication)")
    serve.add_argument("--rest-api-port", "--rest_api_port", dest="rest_api_port", type=int, default=8501,
                       help="REST port (default 8501, as TF Serving)")
    serve.add_argument("--port", type=int, help="gRPC PredictionService port (TF Serving uses 8500); off by default")
    serve.add_argument("--file-system-poll-wait-seconds", "--file_system_poll_wait_seconds",
                       dest="file_system_poll_wait_seconds", type=float, default=2.0,
                       help="how often to look for new versions (default 2)")
    serve.add_argument("--keep-versions", "--keep_versions", dest="keep_versions", type=int,
                       help="delete all but the newest N version folders once not served (default: keep all)")
    serve.add_argument("--events-db", help="the feedback log: a SQLite file (default MODEL_BASE_PATH/events.sqlite) "
                                           "or postgresql://user@host:port/db, which several fronts can share")
    serve.add_argument("--model-server", help="remote model mode: load no model, ask this TF Serving "
                                              "(grpc://HOST:8500) for predictions; MODEL_BASE_PATH is then only "
                                              "read for the served version's catalog (assets.extra)")
    serve.add_argument("--model-server-timeout", type=float, default=10.0,
                       help="seconds per call to --model-server (default 10); past it the front answers 503")
    serve.add_argument("--query-cache-size", type=int, default=1024,
                       help="query embeddings of this many recent distinct user texts are kept (default 1024; 0: off)")
    serve.add_argument("--enable-batching", "--enable_batching", dest="enable_batching",
                       action=argparse.BooleanOptionalAction, default=True,
                       help="run concurrent requests of one signature as one batch (TF Serving's flag; on by "
                            "default here: +49% requests/s at 16 clients, +3% p50 for a lone one, benchmarks/results/"
                            "batching_load.json); "
                            "--no-enable-batching turns it off; ignored with --model-server")
    serve.add_argument("--batching-parameters-file", "--batching_parameters_file", dest="batching_parameters_file",
                       help="TF Serving's batching parameters (text proto); default: the newest export's "
                            "assets.extra/batching_parameters.txt")
    defaults = RequestLimits()
    for name, meaning in (
        ("max_body_bytes", "largest request body / gRPC message, bytes"),
        ("max_batch_size", "user texts (or feedback events) per request"),
        ("max_text_chars", "characters kept of each user text"),
        ("max_exclusions", "items per exclude_item_ids row"),
        ("max_history", "items per history_item_ids row"),
    ):
        serve.add_argument(f"--{name.replace('_', '-')}", dest=name, type=int, default=getattr(defaults, name),
                           help=f"{meaning} (default {getattr(defaults, name)})")
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
        raise FileNotFoundError(f"--model-base-path {base} is not a directory; expected e.g. saved_models/demo")
    limits = RequestLimits(
        max_body_bytes=args.max_body_bytes, max_batch_size=args.max_batch_size, max_text_chars=args.max_text_chars,
        max_exclusions=args.max_exclusions, max_history=args.max_history,
    )
    if args.query_cache_size < 0:
        raise ValueError(f"--query-cache-size must be >= 0, got {args.query_cache_size}")
    if args.model_server_timeout <= 0:
        raise ValueError(f"--model-server-timeout must be > 0, got {args.model_server_timeout}")
    # In remote mode batching is the model server's (TF Serving's own --enable_batching).
    batching = _batching(base, args) if args.enable_batching and not args.model_server else None
    serve(
        base,
        args.model_name or base.name,
        host=args.host,
        rest_port=args.rest_api_port,
        grpc_port=args.port,
        poll_seconds=args.file_system_poll_wait_seconds,
        keep_versions=args.keep_versions,
        event_log_path=args.events_db,
        limits=limits,
        query_cache_size=args.query_cache_size,
        batching=batching,
        model_server=args.model_server,
        model_server_timeout=args.model_server_timeout,
    )
    return 0


def _batching(base: Path, args: argparse.Namespace):
    """The batching parameters: the given file, else the newest export's recommendation."""
    from tfrecs_llm.export.batching_config import FILE_NAME, BatchingParameters
    from tfrecs_llm.export.layout import versions

    if args.batching_parameters_file:
        path = Path(args.batching_parameters_file)
        if not path.is_file():
            raise FileNotFoundError(f"--batching-parameters-file {path} does not exist")
        return BatchingParameters.from_file(path)
    found = versions(base)
    recommended = base / str(found[-1]) / "assets.extra" / FILE_NAME if found else None
    return BatchingParameters.from_file(recommended) if recommended and recommended.is_file() else BatchingParameters()
