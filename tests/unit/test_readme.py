"""The README's commands work as written: every ``tfrecs-llm`` line parses with the real CLI,
every ``curl`` names a route the server has, and the first-hour Python snippet runs."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path
from types import SimpleNamespace

from tests.unit.test_model_manager import exported_tiny_model, publish
from tfrecs_llm.cli import build_parser
from tfrecs_llm.serving.rest import create_app

README = (Path(__file__).parents[2] / "README.md").read_text()
BLOCKS = re.findall(r"```(\w*)\n(.*?)```", README, re.S)


def _shell_lines() -> list[str]:
    lines = []
    for language, body in BLOCKS:
        if language != "bash":
            continue
        for line in body.replace("\\\n", " ").splitlines():
            line = line.split("#")[0].strip().rstrip("&").strip()
            if line:
                lines.append(line)
    return lines


def test_every_cli_command_in_the_readme_parses() -> None:
    commands = [line for line in _shell_lines() if re.match(r"(\.venv/bin/)?tfrecs-llm ", line)]
    assert len(commands) >= 12
    parser = build_parser()
    for command in commands:
        argv = shlex.split(re.sub(r"\[([^]]*)\]", r"\1", command))[1:]  # "[--index x]" is optional syntax
        try:
            parser.parse_args(argv)
        except SystemExit as exit_:
            raise AssertionError(f"README command does not parse: {command}") from exit_


def test_every_curl_in_the_readme_names_a_route_of_the_server() -> None:
    routes = [route.path for route in create_app(SimpleNamespace(model_name="m")).routes]
    patterns = [re.compile("^" + re.sub(r"\{[^}]+\}", "[^/:]+", re.escape(r).replace(r"\{", "{").replace(r"\}", "}")) + "$")
                for r in routes]
    urls = [re.search(r"localhost:8501(/\S+)", line).group(1) for line in _shell_lines() if line.startswith("curl")]
    assert len(urls) >= 6
    for url in urls:
        assert any(p.match(url) for p in patterns), url


def test_the_first_hour_python_snippet_runs(tmp_path) -> None:
    [snippet] = [body for language, body in BLOCKS if language == "python" and "load_export" in body]
    publish(tmp_path / "demo", 1, exported_tiny_model())
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(snippet.replace("saved_models/demo", str(tmp_path / "demo")), {})
    lines = printed.getvalue().strip().splitlines()
    assert len(lines) == 3 and all("|" in line for line in lines)
