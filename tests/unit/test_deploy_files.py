"""The deployment files in deploy/ say what the package accepts: the fronts' command line parses
as `tfrecs-llm serve` in remote mode against the TF Serving service the file defines, with the
PostgreSQL it defines, and nginx balances over the fronts' REST port."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tfrecs_llm.cli import build_parser
from tfrecs_llm.serving.event_log_postgres import is_postgres_url
from tfrecs_llm.serving.remote import grpc_target

DEPLOY = Path(__file__).parents[2] / "deploy"


def test_the_compose_file_wires_fronts_to_tf_serving_and_postgres() -> None:
    services = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    assert set(services) == {"postgres", "tfserving", "front", "lb"}
    front = build_parser().parse_args(["serve", *services["front"]["command"]])
    serving_flags = dict(flag.lstrip("-").split("=", 1) for flag in services["tfserving"]["command"])
    host, port = grpc_target(front.model_server).split(":")
    assert (host, port) == ("tfserving", serving_flags["port"])
    assert front.model_name == serving_flags["model_name"] and front.model_base_path == serving_flags["model_base_path"]
    # The fronts read the same model folder as TF Serving, read-only.
    assert services["front"]["volumes"] == services["tfserving"]["volumes"] == ["../saved_models:/models:ro"]
    assert is_postgres_url(front.events_db)
    database = services["postgres"]["environment"]
    assert front.events_db == (
        f"postgresql://{database['POSTGRES_USER']}:{database['POSTGRES_PASSWORD']}@postgres:5432/{database['POSTGRES_DB']}"
    )
    assert front.host == "0.0.0.0" and services["front"]["deploy"]["replicas"] >= 2
    assert services["tfserving"]["image"].startswith("tensorflow/serving:2.20")


def test_nginx_balances_over_the_fronts_rest_port() -> None:
    services = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    front = build_parser().parse_args(["serve", *services["front"]["command"]])
    upstream = re.search(r"upstream fronts \{\s*server (\S+);", (DEPLOY / "nginx.conf").read_text())
    assert upstream is not None and upstream.group(1) == f"front:{front.rest_api_port}"
    assert "nginx.conf:/etc/nginx/nginx.conf:ro" in services["lb"]["volumes"][0]


def test_the_front_image_installs_the_extras_remote_mode_needs() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert '".[serving,postgres]"' in dockerfile and 'ENTRYPOINT ["tfrecs-llm", "serve"]' in dockerfile
