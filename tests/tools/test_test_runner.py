"""Running a repository's tests: which command, what the counts were, a clean environment, time-outs."""

from __future__ import annotations

import asyncio

import sys
import textwrap
import time
from pathlib import Path

import pytest

from turnout.errors import UserError
from turnout.tools.sandbox import Sandbox, bubblewrap_problem
from turnout.tools.test_runner import TestCommandError, TestReport, detect_test_command, run_tests

PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]


@pytest.fixture(autouse=True)
def _fast_inner_pytest(monkeypatch: pytest.MonkeyPatch) -> None:
    """The suites run here need no plugins; loading every installed one costs ~1.5 s a run."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


# -- which command ---------------------------------------------------------------------------


@pytest.mark.parametrize("files", [
    {"tests/__init__.py": ""},
    {"pkg/test_core.py": ""},
    {"pkg/core_test.py": ""},
    {"pyproject.toml": "[project]\nname = 'x'\n\n[tool.pytest.ini_options]\naddopts = '-ra'\n"},
    {"pytest.ini": "[pytest]\n"},
    {"setup.cfg": "[metadata]\nname = x\n\n[tool:pytest]\ntestpaths = src\n"},
    {"tox.ini": "[tox]\nenvlist = py311\n\n[pytest]\naddopts = -ra\n"},
], ids=["tests-folder", "test_-file", "_test-file", "pyproject", "pytest.ini", "setup.cfg", "tox.ini-pytest"])
def test_pytest_is_detected_from_tests_or_its_config(tmp_path: Path, files: dict[str, str]) -> None:
    assert detect_test_command(write(tmp_path / "repo", files)) == PYTEST


def test_tox_is_detected_when_tox_ini_has_no_pytest_section(tmp_path: Path) -> None:
    assert detect_test_command(write(tmp_path / "repo", {"tox.ini": "[tox]\nenvlist = py311\n"})) == ["tox"]


def test_a_tox_command_that_runs_pytest_is_run_as_pytest_on_its_paths(tmp_path: Path) -> None:
    # texttable 1.7.0: its only test file is tests.py, which pytest collects only when named
    tox = "[testenv]\ndeps =\n    pytest\ncommands = pytest --cov=texttable tests.py {posargs}\n"
    root = write(tmp_path / "repo", {"tox.ini": tox, "tests.py": "def test_x():\n    pass\n"})
    assert detect_test_command(root) == [*PYTEST, "tests.py"]
    # tabulate 0.9.0: `--ignore benchmark.py` names a file to skip, not one to run
    root = write(tmp_path / "tabulate", {"tox.ini": "[testenv]\ncommands = pytest -v --doctest-modules --ignore benchmark.py\n",
                                         "benchmark.py": "", "test/test_x.py": ""})
    assert detect_test_command(root) == PYTEST


def test_make_test_is_detected_from_a_makefile_test_target(tmp_path: Path) -> None:
    root = write(tmp_path / "repo", {"Makefile": "TEST := 1\nbuild:\n\tcc x.c\ntest: build\n\t./run\n"})
    assert detect_test_command(root) == ["make", "test"]


def test_nothing_is_detected_in_a_repository_without_tests(tmp_path: Path) -> None:
    root = write(tmp_path / "repo", {"main.py": "", "Makefile": "TEST := 1\nall:\n\tcc x.c\n",
                                     ".venv/lib/test_site.py": ""})
    assert detect_test_command(root) is None


async def test_no_command_given_or_found_says_to_pass_test_cmd(tmp_path: Path) -> None:
    root = write(tmp_path / "repo", {"main.py": ""})
    with pytest.raises(TestCommandError, match="no test command found.*pass --test-cmd"):
        await run_tests(root)
    assert issubclass(TestCommandError, UserError)


async def test_a_command_that_does_not_exist_says_to_pass_test_cmd(tmp_path: Path) -> None:
    with pytest.raises(TestCommandError, match="cannot be started.*--test-cmd"):
        await run_tests(tmp_path, ["turnout-no-such-test-runner"])


# -- running a real suite --------------------------------------------------------------------

SUITE = {
    "test_math.py": """
        import pytest

        def test_adds():
            assert 1 + 1 == 2

        def test_multiplies():
            assert 2 * 3 == 6

        def test_wrong():
            assert 2 + 2 == 5

        @pytest.mark.skip(reason="not today")
        def test_later():
            pass
        """,
}


async def test_counts_and_failing_tests_come_from_a_real_pytest_run(tmp_path: Path) -> None:
    report = await run_tests(write(tmp_path / "repo", SUITE))
    assert (report.passed, report.failed, report.errors, report.skipped) == (2, 1, 0, 1)
    assert report.failures == ["test_math.py::test_wrong"]
    assert report.exit_code == 1 and not report.ok and not report.timed_out
    assert report.summary() == "2 passed, 1 failed, 1 skipped (test_math.py::test_wrong)"
    assert "assert (2 + 2) == 5" in report.output_tail
    assert "pytest" in report.command


async def test_a_passing_suite_is_ok(tmp_path: Path) -> None:
    root = write(tmp_path / "repo", {"test_ok.py": "def test_ok():\n    assert True\n"})
    report = await run_tests(root, PYTEST)
    assert report.ok and report.summary() == "1 passed"


async def test_no_tests_collected_is_not_ok(tmp_path: Path) -> None:
    report = await run_tests(write(tmp_path / "repo", {"tests/__init__.py": ""}))
    assert report.exit_code == 5 and not report.ok
    assert report.summary() == "no tests ran, exit code 5"


async def test_a_suite_whose_every_test_skips_ran_no_tests_and_is_not_ok(tmp_path: Path) -> None:
    root = write(tmp_path / "repo", {"test_gpu.py": "import pytest\n\n@pytest.mark.skip(reason='no GPU')\n"
                                                   "def test_gpu():\n    pass\n"})
    report = await run_tests(root)
    assert report.exit_code == 0 and report.executed == 0 and not report.ok
    assert report.summary() == "no tests ran, 1 skipped, exit code 0"


async def test_a_collection_error_is_counted_from_the_junit_report_and_no_tests_ran(tmp_path: Path) -> None:
    root = write(tmp_path / "repo", {"test_ok.py": "def test_ok():\n    pass\n",
                                     "test_broken.py": "import not_a_module_anywhere\n"})
    report = await run_tests(root)
    assert (report.passed, report.failed, report.errors, report.executed) == (0, 0, 1, 0) and not report.ok
    assert report.summary() == "no tests ran, 1 error, exit code 2 (test_broken.py)"


async def test_the_given_pythonpath_comes_first_on_the_tests_import_path(tmp_path: Path) -> None:
    root = write(tmp_path / "repo", {"src/pkg/__init__.py": "WHERE = 'workspace'\n",
                                     "test_where.py": "import pkg\n\ndef test_where():\n"
                                                      "    assert pkg.WHERE == 'workspace'\n"})
    assert not (await run_tests(root)).ok
    report = await run_tests(root, pythonpath=[str(root / "src")])
    assert report.ok and report.summary() == "1 passed"


async def test_the_tests_see_no_keys_tokens_or_turnout_settings(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "GITHUB_TOKEN", "DB_PASSWORD", "TURNOUT_PLANNER", "OTEL_EXPORTER_OTLP_ENDPOINT",
                 "LITELLM_LOG"):
        monkeypatch.setenv(name, "secret-value")
    root = write(tmp_path / "repo", {"test_env.py": """
        import os

        def test_environment_is_clean():
            assert "OPENAI_API_KEY" not in os.environ
            leaked = [n for n in ("GITHUB_TOKEN", "DB_PASSWORD", "TURNOUT_PLANNER", "OTEL_EXPORTER_OTLP_ENDPOINT",
                                  "LITELLM_LOG") if n in os.environ]
            assert leaked == []
            assert os.environ["PYTHONDONTWRITEBYTECODE"] == "1"
            assert "PATH" in os.environ
        """})
    report = await run_tests(root)
    assert report.ok, report.output_tail


@pytest.mark.parametrize("kind", ["none", "bubblewrap"])
async def test_a_hanging_suite_is_killed_with_its_children_at_the_timeout(tmp_path: Path, kind: str) -> None:
    if kind == "bubblewrap" and bubblewrap_problem() is not None:
        pytest.skip(f"no sandbox here: {bubblewrap_problem()}")
    root = write(tmp_path / "repo", {"test_hang.py": """
        import subprocess, time

        def test_hangs():
            subprocess.Popen(["sh", "-c", "sleep 3 && touch outlived"])
            time.sleep(30)
        """})
    started = time.perf_counter()
    report = await run_tests(root, timeout_s=1, sandbox=Sandbox(kind=kind))  # type: ignore[arg-type]
    assert time.perf_counter() - started < 10
    assert report.timed_out and not report.ok
    assert report.summary().startswith("timed out after 1s")
    await asyncio.sleep(4)
    assert not (root / "outlived").exists()  # the child died with the run


# -- other commands and summary lines --------------------------------------------------------


async def test_a_string_command_runs_through_the_shell(tmp_path: Path) -> None:
    report = await run_tests(tmp_path, "echo checking && exit 3")
    assert report.exit_code == 3 and not report.ok
    assert "checking" in report.output_tail
    assert report.summary() == "exit code 3"


@pytest.mark.parametrize("line", ["==== 3 failed, 10 passed, 1 skipped in 0.12s ====",
                                  "3 failed, 10 passed, 1 skipped in 0.12s",
                                  "==== 3 failed, 10 passed, 1 skipped, 2 warnings in 65.20s (0:01:05) ===="])
async def test_pytest_summary_lines_are_parsed_in_both_forms(tmp_path: Path, line: str) -> None:
    (tmp_path / "out.txt").write_text(f"FAILED tests/test_a.py::test_b - assert 1 == 2\n{line}\n")
    report = await run_tests(tmp_path, "cat out.txt; exit 1")
    assert (report.passed, report.failed, report.skipped) == (10, 3, 1)
    assert report.failures == ["tests/test_a.py::test_b"]


def test_the_summary_lists_at_most_three_failures() -> None:
    report = TestReport(command="pytest", exit_code=1, passed=1, failed=5, errors=1, duration_s=1.0,
                        failures=[f"t.py::test_{i}" for i in range(6)])
    assert report.summary() == "1 passed, 5 failed, 1 error (t.py::test_0, t.py::test_1, t.py::test_2, +3 more)"


def test_reports_are_not_collected_as_test_classes() -> None:
    assert TestReport.__test__ is False and TestCommandError.__test__ is False


@pytest.mark.parametrize("command, junit", [("pytest -q", True), ("python3 -m pytest -x tests", True),
                                            ("pytest $ARGS", False), ("cd src && pytest", False),
                                            ("tox -e py", False)])
def test_only_a_plain_pytest_command_is_given_a_junit_report(command: str, junit: bool) -> None:
    from turnout.tools.test_runner import _pytest_argv

    assert (_pytest_argv(command) is not None) is junit
