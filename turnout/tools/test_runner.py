"""Running a repository's own tests: the verifier's evidence that an edit kept the code working.

    report = await run_tests(workspace.path)   # command detected: pytest, tox or `make test`
    report.ok, report.summary()                # True/False, "12 passed, 1 failed (tests/test_a.py::test_b)"

A pytest run is read from pytest's own machine output (`--junit-xml`), so its counts are exact,
and a run in which no test executed is "no tests ran": never a pass.

The tests are the repository's code: they run under a `Sandbox` (bubblewrap where it can
run: only the workspace writable, no network, no credentials; see `sandbox.py`), with an
environment built from an allowlist either way. A run that hangs is killed with its whole
process group when the time is up, so no stray child outlives it.
"""

from __future__ import annotations

import asyncio
import configparser
import contextlib
import os
import re
import shlex
import shutil
import signal
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel

from turnout.errors import ConfigError, UserError
from turnout.telemetry._spans import traced_tool
from turnout.tools.sandbox import Sandbox
from turnout.tools._walk import walk
from turnout.tools.tox_config import read_tox

_KEEP_BYTES = 1_000_000  # enough for pytest's closing summary; a chatty suite's middle is dropped
_TAIL_CHARS = 4000
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_SUMMARY = re.compile(r"^=*\s*(?P<body>.+?)\s+in\s+[\d.]+s(?:\s*\([\d:]+\))?\s*=*$")
_COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|deselected|warnings?|rerun)")
_FAILED = re.compile(r"^(?:FAILED|ERROR) (.+?)(?: - .*)?$")
_MAKE_TEST = re.compile(r"^test\s*:(?!=)", re.MULTILINE)


class TestCommandError(UserError):
    """No test command was given or found, or the given one cannot be started."""

    __test__ = False  # not a pytest test class, whatever its name


class TestReport(BaseModel):
    """What one test run did. Counts come from pytest's junit XML when pytest ran; for other
    runners (tox, make) from a pytest summary line in their output, if any."""

    __test__: ClassVar[bool] = False

    command: str
    exit_code: int
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    duration_s: float
    timed_out: bool = False
    failures: list[str] = []
    output_tail: str = ""
    # Tests that ran (passed + failed); None when the runner's output did not say.
    executed: int | None = None
    python: str | None = None  # the interpreter that ran them, when turnout chose it

    @property
    def ok(self) -> bool:
        """The suite ran to the end, at least one test ran, and it passed."""
        return self.exit_code == 0 and not self.timed_out and self.executed != 0

    @property
    def no_tests_ran(self) -> bool:
        return self.executed == 0 and not self.timed_out

    def summary(self) -> str:
        """One line for a person or a planner: "12 passed, 1 failed (tests/test_a.py::test_b)"."""
        counts = [(self.passed, "passed"), (self.failed, "failed"),
                  (self.errors, "error" if self.errors == 1 else "errors"), (self.skipped, "skipped")]
        text = ", ".join(f"{n} {label}" for n, label in counts if n)
        if self.timed_out:
            text = f"timed out after {self.duration_s:.0f}s" + (f" ({text} so far)" if text else "")
        elif self.no_tests_ran:
            text = ", ".join(["no tests ran", *([text] if text else []), f"exit code {self.exit_code}"])
        elif not text or (not self.ok and not self.failed and not self.errors):
            text = ", ".join(filter(None, [text, f"exit code {self.exit_code}"]))
        if self.failures:
            more = f", +{len(self.failures) - 3} more" if len(self.failures) > 3 else ""
            text += f" ({', '.join(self.failures[:3])}{more})"
        return text


def _has_pytest_config(root: Path) -> bool:
    def section(name: str, header: str) -> bool:
        path = root / name
        return path.is_file() and header in path.read_text(errors="replace")

    if (root / "pytest.ini").is_file() or section("pyproject.toml", "[tool.pytest.ini_options]"):
        return True
    for name, header in (("setup.cfg", "tool:pytest"), ("tox.ini", "pytest")):
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            parser.read(root / name)
        except (configparser.Error, UnicodeDecodeError):
            if section(name, f"[{header}]"):
                return True
            continue
        if parser.has_section(header):
            return True
    return False


def _has_test_files(root: Path) -> bool:
    for _, _, filenames in walk(root):
        if any(n.endswith(".py") and (n.startswith("test_") or n.endswith("_test.py")) for n in filenames):
            return True
    return False


def detect_test_command(root: Path, python: str | None = None) -> list[str] | None:
    """pytest (run by `python`, default this interpreter), tox or `make test`, whichever the
    repository shows signs of using; None when none. A tox.ini whose commands run pytest
    means pytest, here, on the paths those commands name (`pytest tests.py`)."""
    root = Path(root)
    pytest = [python or sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    tox = read_tox(root)
    if tox is not None and tox.runs_pytest:
        return [*pytest, *tox.pytest_paths]
    if (root / "tests").is_dir() or _has_pytest_config(root) or _has_test_files(root):
        return pytest
    if tox is not None:
        return ["tox"]
    for name in ("GNUmakefile", "makefile", "Makefile"):
        path = root / name
        if path.is_file() and _MAKE_TEST.search(path.read_text(errors="replace")):
            return ["make", "test"]
    return None


def _parse(output: str) -> dict[str, object]:
    counts: dict[str, int] = {}
    failures: list[str] = []
    summary_found = False
    for line in output.splitlines():
        found = _SUMMARY.match(line.strip())
        if found and (body := found["body"]) and (
                body == "no tests ran" or all(_COUNT.fullmatch(part) for part in body.split(", "))):
            counts = {label.rstrip("s") if label.startswith("error") else label: int(n)
                      for n, label in _COUNT.findall(body)}
            summary_found = True
        failed = _FAILED.match(line)
        if failed and failed[1] not in failures:
            failures.append(failed[1])
    return {"passed": counts.get("passed", 0), "failed": counts.get("failed", 0),
            "errors": counts.get("error", 0), "skipped": counts.get("skipped", 0), "failures": failures,
            "summary_found": summary_found}


def _pytest_argv(command: list[str] | str) -> list[str] | None:
    """The command as an argument list when it runs pytest directly (`pytest …`,
    `python -m pytest …`), so a junit report can be asked for; None otherwise."""
    try:
        argv = shlex.split(command) if isinstance(command, str) else list(command)
    except ValueError:
        return None
    if isinstance(command, str) and any(char in command for char in ";&|`$<>*?~(){}"):
        return None  # the shell has work to do: run it as written, read what it prints
    if argv and (Path(argv[0]).name == "pytest" or argv[1:3] == ["-m", "pytest"]):
        return argv
    return None


def read_junit(path: Path) -> dict[str, object] | None:
    """Exact counts from pytest's junit XML: passed, failed, errors (collection errors among them),
    skipped, and the failing tests' ids with the first line of why; None when there is none."""
    try:
        root = ElementTree.parse(path).getroot()
    except (OSError, ElementTree.ParseError):
        return None
    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    failures: list[str] = []
    for case in root.iter("testcase"):
        outcome = next((c for c in case if c.tag in ("failure", "error", "skipped")), None)
        if outcome is None:
            counts["passed"] += 1
            continue
        key = {"failure": "failed", "error": "errors", "skipped": "skipped"}[outcome.tag]
        counts[key] += 1
        if key != "skipped":
            where = "::".join(filter(None, [case.get("classname"), case.get("name")]))
            first = (outcome.get("message") or outcome.text or "").strip().splitlines()
            failures.append(f"{where}: {first[0][:200]}" if first else where)
    return {**counts, "junit_failures": failures}


async def _start(command: list[str] | str, root: Path, pythonpath: list[str], python: str | None,
                 sandbox: Sandbox, scratch: Path | None) -> asyncio.subprocess.Process:
    argv = ["/bin/sh", "-c", command] if isinstance(command, str) else command
    try:
        # File checks off the event loop: an ASGI server (langgraph dev) refuses blocking calls on it.
        argv, env = await asyncio.to_thread(sandbox.process, argv, root=root, python=python, pythonpath=pythonpath,
                                            writable=[scratch] if scratch else [])
        return await asyncio.create_subprocess_exec(
            *argv, cwd=root, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, start_new_session=True)
    except (FileNotFoundError, PermissionError) as exc:
        raise TestCommandError(f"test command {command!r} cannot be started ({exc.strerror}); install it or "
                               "pass --test-cmd with the command that runs this repository's tests") from None


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone already
        os.killpg(pid, signal.SIGKILL)


@traced_tool("run_tests")
async def run_tests(root: Path, command: list[str] | str | None = None, *, timeout_s: float = 600,
                    python: str | None = None, pythonpath: list[str] | None = None,
                    sandbox: Sandbox | None = None) -> TestReport:
    """Run the tests in `root` (the given command, or the one detected for `python`) and report
    what happened. `pythonpath` goes first on the tests' import path. `sandbox`: what they run
    under (default: bubblewrap where it can run here, else none, as `Sandbox.resolve` says)."""
    root = Path(root)
    if sandbox is None:
        sandbox = await asyncio.to_thread(Sandbox.resolve)
    if not root.is_dir():
        raise ConfigError(f"test root {str(root)!r} is not a directory; pass the repository (or workspace) folder")
    if command is None:
        command = detect_test_command(root, python)
        if command is None:
            raise TestCommandError(f"no test command found in {root} (no tests/ folder, test_*.py files, pytest "
                                   "config, tox.ini or Makefile test target); pass --test-cmd with the command")
    # File work off the event loop: an ASGI server (langgraph dev) refuses blocking calls on it.
    pytest_argv = _pytest_argv(command)
    found = None
    if pytest_argv is None:
        report = await _run(command, root, timeout_s, pythonpath or [], python, sandbox, None)
    else:
        scratch = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="turnout-tests-"))
        try:
            junit = scratch / "junit.xml"
            report = await _run([*pytest_argv, f"--junit-xml={junit}"], root, timeout_s, pythonpath or [], python,
                                sandbox, scratch)
            found = await asyncio.to_thread(read_junit, junit)
        finally:
            await asyncio.to_thread(shutil.rmtree, scratch, True)
    shown = command if isinstance(command, str) else shlex.join(command)
    if found is not None:
        failures = report["failures"] or found["junit_failures"]
        counts = {key: found[key] for key in ("passed", "failed", "errors", "skipped")}
        executed: int | None = found["passed"] + found["failed"]  # type: ignore[operator]
    else:
        failures, counts = report["failures"], {key: report[key] for key in ("passed", "failed", "errors", "skipped")}
        executed = report["passed"] + report["failed"] if report["summary_found"] else None  # type: ignore[operator]
    return TestReport(command=shown, exit_code=report["exit_code"], duration_s=report["duration_s"],  # type: ignore[arg-type]
                      timed_out=report["timed_out"], output_tail=report["output_tail"],  # type: ignore[arg-type]
                      failures=failures, executed=executed, python=python, **counts)  # type: ignore[arg-type]


async def _run(command: list[str] | str, root: Path, timeout_s: float, pythonpath: list[str],
               python: str | None, sandbox: Sandbox, scratch: Path | None) -> dict[str, object]:
    started = time.perf_counter()
    process = await _start(command, root, pythonpath, python, sandbox, scratch)
    kept = bytearray()

    async def pump() -> None:
        assert process.stdout is not None
        while data := await process.stdout.read(65536):
            kept.extend(data)
            if len(kept) > 2 * _KEEP_BYTES:
                del kept[:-_KEEP_BYTES]

    reader = asyncio.create_task(pump())
    timed_out = False
    try:
        await asyncio.wait_for(process.wait(), timeout_s)
    except TimeoutError:
        timed_out = True
    finally:
        _kill_group(process.pid)  # on time-out the run; otherwise whatever it left running in the background
        await process.wait()
        # A child that left the group may still hold the pipe open; what was read by then is enough.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(reader, 5)
    output = _ANSI.sub("", bytes(kept[-_KEEP_BYTES:]).decode("utf-8", errors="replace"))
    return {"exit_code": process.returncode if process.returncode is not None else -1,
            "duration_s": round(time.perf_counter() - started, 3), "timed_out": timed_out,
            "output_tail": output[-_TAIL_CHARS:], **_parse(output)}
