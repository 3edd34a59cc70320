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
