"""The CLI: help for every option, one-paragraph errors for bad input, train -> export -> recommend."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tfrecs_llm.cli import build_parser, main

REPO = Path(__file__).parents[2]


def test_every_option_has_help() -> None:
    parser = build_parser()
    for subparsers in parser._subparsers._group_actions:
        for name, sub in subparsers.choices.items():
            for action in sub._actions:
                if action.dest != "help":
                    assert action.help, f"{name} {action.option_strings or action.dest} has no help"


def test_python_dash_m_shows_help() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "tfrecs_llm", "--help"], capture_output=True, text=True, env=env)
    assert result.returncode == 0 and "train" in result.stdout and "recommend" in result.stdout


def test_missing_column_is_one_paragraph_not_a_traceback(tmp_path, capsys) -> None:
    (tmp_path / "items.csv").write_text("item_id,title\n1,A\n")
    (tmp_path / "events.csv").write_text("user_id,item_id,timestamp\nu,1,2024-01-01\n")
    code = main(["train", "--items", str(tmp_path / "items.csv"), "--interactions",
                 str(tmp_path / "events.csv"), "--output", str(tmp_path / "m")])
    err = capsys.readouterr().err
    assert code == 2
    assert "items.csv" in err and "description" in err and "Traceback" not in err
    assert not (tmp_path / "m").exists()


def test_missing_files_and_bad_overrides(tmp_path, capsys) -> None:
    assert main(["train", "--items", str(tmp_path / "nope.csv"), "--interactions", "x.csv", "--output", "m"]) == 2
    assert "nope.csv" in capsys.readouterr().err
    assert main(["train", "--sample", "--output", "m", "--set", "train.epoch=3"]) == 2
    assert "unknown config key 'train.epoch'" in capsys.readouterr().err
    assert main(["export", "--model", str(tmp_path), "--name", "x"]) == 2
    assert "not a saved tfrecs_llm model" in capsys.readouterr().err
    assert main(["recommend", "hello", "--saved-model", str(tmp_path)]) == 2
    assert "holds no saved_model.pb" in capsys.readouterr().err


def test_train_needs_data(capsys) -> None:
    assert main(["train", "--output", "m"]) == 2
    assert "--items and --interactions" in capsys.readouterr().err


def test_unknown_option_is_rejected_by_argparse() -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--bogus"])
    assert exit_info.value.code == 2


def test_without_the_serving_extra_export_works_and_serve_says_what_to_install(tmp_path) -> None:
    # A process in which the serving extra's packages cannot be imported.
    script = """
import sys
for name in ("fastapi", "uvicorn", "httpx", "starlette"):
    sys.modules[name] = None
import importlib.util
real_find_spec = importlib.util.find_spec
importlib.util.find_spec = lambda name, *a: None if name in ("fastapi", "uvicorn", "httpx") else real_find_spec(name, *a)
import tfrecs_llm.export.tf_serving  # noqa: F401  (what `tfrecs-llm export` imports)
from tfrecs_llm.cli import main
sys.exit(main(["serve", "--model_base_path", sys.argv[1]]))
"""
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, env=env)
    assert result.returncode == 2, result.stderr
    assert "serve needs the 'serving' extra (fastapi, uvicorn, httpx not installed)" in result.stderr
    assert "pip install 'tfrecs_llm[serving]'" in result.stderr and "Traceback" not in result.stderr


def test_serve_takes_one_flag_style_and_tf_servings_spellings() -> None:
    parser = build_parser()
    ours = parser.parse_args(["serve", "--model-base-path", "m", "--rest-api-port", "9", "--keep-versions", "2",
                              "--events-db", "e.sqlite", "--max-exclusions", "50", "--query-cache-size", "0"])
    theirs = parser.parse_args(["serve", "--model_base_path", "m", "--rest_api_port", "9", "--keep_versions", "2",
                                "--events-db", "e.sqlite", "--max-exclusions", "50", "--query-cache-size", "0"])
    assert vars(ours) == vars(theirs)
    assert (ours.model_base_path, ours.rest_api_port, ours.max_exclusions, ours.events_db) == ("m", 9, 50, "e.sqlite")
    flags = [o for sub in parser._subparsers._group_actions[0].choices.values() for a in sub._actions
             for o in a.option_strings if o.startswith("--")]
    # Every flag has the dashed spelling; underscores only as TF Serving's aliases.
    assert all("_" not in flag for flag in flags if flag not in
               {"--model_base_path", "--model_name", "--rest_api_port", "--file_system_poll_wait_seconds",
                "--keep_versions", "--enable_batching", "--no-enable_batching", "--batching_parameters_file"})
    assert ours.enable_batching and not parser.parse_args(["serve", "--model-base-path", "m",
                                                           "--no-enable-batching"]).enable_batching


def test_serve_in_remote_mode_refuses_what_belongs_to_the_model_server(tmp_path) -> None:
    from tfrecs_llm.cli.serve import run

    parser = build_parser()
    remote = ["serve", "--model-base-path", str(tmp_path), "--model-server", "grpc://127.0.0.1:1",
              "--events-db", str(tmp_path / "events.sqlite")]
    with pytest.raises(ValueError, match="grpc_port, keep_versions: the model server's business in remote mode"):
        run(parser.parse_args([*remote, "--port", "8500", "--keep-versions", "2"]))
    with pytest.raises(ValueError, match="--model-server-timeout must be > 0, got 0.0"):
        run(parser.parse_args([*remote, "--model-server-timeout", "0"]))
    with pytest.raises(ValueError, match="--model-server must look like grpc://HOST:PORT"):
        run(parser.parse_args([*remote[:4], "http://127.0.0.1:8501", *remote[5:]]))
    assert not (tmp_path / "events.sqlite").exists()  # refused before anything was opened
