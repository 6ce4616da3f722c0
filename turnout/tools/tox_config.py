"""What a repository's `tox.ini` says about its tests: the packages its test environment
installs (`[testenv] deps`) and the paths its pytest command runs (`[testenv] commands`).

    tox = read_tox(root)      # None without a readable tox.ini
    tox.deps                  # ["pytest", "pytest-cov", "cjkwrap"]
    tox.pytest_paths          # ["tests.py"], when a command runs pytest on them

turnout runs the tests itself in the repository's environment rather than through tox, which
would build its own environments (and needs the network for it); these are what that run
needs to match tox's.
"""

from __future__ import annotations

import configparser
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

# pytest options (and common plugins') whose value is the next word: `--ignore benchmark.py` names no test path
_TAKES_A_VALUE = frozenset("--ignore --ignore-glob --deselect -k -m -p -c --rootdir --confcutdir --basetemp -o "
                           "--override-ini --junitxml --junit-xml --cov --cov-report --cov-config --durations --maxfail -n "
                           "--dist --tb -W --log-level --timeout -r --import-mode --doctest-glob".split())
_FACTOR = re.compile(r"^[\w.!,-]+:\s")
_PYTEST = re.compile(r"^(?:(?:\{envpython\}|python[\d.]*)\s+-m\s+)?(?:py\.test|pytest)\b")


@dataclass
class ToxConfig:
    deps: list[str] = field(default_factory=list)
    runs_pytest: bool = False
    pytest_paths: list[str] = field(default_factory=list)


def read_tox(root: Path) -> ToxConfig | None:
    path = root / "tox.ini"
    if not path.is_file():
        return None
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        return None
    if not parser.has_section("testenv"):
        return ToxConfig()
    config = ToxConfig()
    for line in parser.get("testenv", "deps", fallback="").splitlines():
        line = line.split("#", 1)[0].strip()
        # -r files, the project itself, substitutions, and `factor: dep` lines of other environments
        if line and not line.startswith(("-", ".", "{")) and "{" not in line and not _FACTOR.match(line):
            config.deps.append(line)
    for line in parser.get("testenv", "commands", fallback="").splitlines():
        line = line.strip()
        if _PYTEST.match(line):
            config.runs_pytest = True
            try:
                words = shlex.split(line)
            except ValueError:
                continue
            config.pytest_paths += [w for before, w in zip(words, words[1:]) if not w.startswith("-")
                                    and before not in _TAKES_A_VALUE and "{" not in w
                                    and (root / w.split("::", 1)[0]).exists()]
    return config
