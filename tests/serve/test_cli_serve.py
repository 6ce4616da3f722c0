"""`turnout serve` on the command line: refusals before anything listens, and a real server
process answering the OpenAI SDK until Ctrl-C."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.serve.conftest import client, user
from turnout.cli import app
from turnout.engines import scripted

runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--host", "0.0.0.0"], "refusing to serve on 0.0.0.0 without an API key"),
        (["--model", "openai/gpt-5"], "openai/gpt-5 is not one: serving it would make this server a proxy"),
        (["--model", "scripted/ghost"], "no script named 'ghost'"),
        (["--max-concurrency", "0"], "--max-concurrency: Input should be greater than or equal to 1"),
        (["--config", "missing.toml"], "does not exist"),
    ],
)
def test_a_bad_start_is_one_line_and_exit_code_2(args: list[str], message: str) -> None:
    with scripted.scripted("here", ["x"]):
        result = runner.invoke(app, ["serve", "--model", "scripted/here", *args], env={"COLUMNS": "500"})
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_without_fastapi_it_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def no_fastapi(name: str, *args: Any, **kwargs: Any) -> Any:
        return None if name == "fastapi" else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", no_fastapi)
    result = runner.invoke(app, ["serve"], env={"COLUMNS": "500"})
    assert result.exit_code == 2
    assert "turnout serve needs fastapi: pip install 'turnout[serve]'" in result.stderr


@pytest.mark.slow
def test_the_command_serves_until_interrupted(tmp_path: Path) -> None:
    (tmp_path / "answers.json").write_text(json.dumps(["served from a subprocess"]))
    process = subprocess.Popen(
        [sys.executable, "-m", "turnout", "serve", "--port", "0", "--model", "scripted/answers.json"],
        cwd=tmp_path, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        banner = _read_until(process, re.compile("serving scripted/answers.json"), timeout_s=60)
        url = re.search(r"http://127\.0\.0\.1:\d+/v1", banner).group(0)  # type: ignore[union-attr]
        response = client(url).chat.completions.create(model="scripted/answers.json", messages=user("hi"))
        assert response.choices[0].message.content == "served from a subprocess"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


def _read_until(process: subprocess.Popen[str], pattern: re.Pattern[str], timeout_s: float) -> str:
    """stderr of `process` up to the first line matching `pattern`."""
    assert process.stderr is not None
    seen = ""
    deadline = time.monotonic() + timeout_s
    with selectors.DefaultSelector() as selector:
        selector.register(process.stderr, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
                break
            line = process.stderr.readline()
            if not line:
                break
            seen += line
            if pattern.search(line):
                return seen
    raise AssertionError(f"`turnout serve` did not print {pattern.pattern!r}; it printed:\n{seen}")


def test_a_port_in_use_is_one_clear_line() -> None:
    with socket.socket() as taken, scripted.scripted("here", ["x"]):
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(app, ["serve", "--model", "scripted/here", "--port", str(port)], env={"COLUMNS": "500"})
    assert result.exit_code == 2, result.output
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
