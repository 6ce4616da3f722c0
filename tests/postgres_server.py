"""A real PostgreSQL server for the tests (the `postgres_url` fixture), never a mock.

The server is Debian's `postgresql` package: its own cluster in a temporary directory,
listening on a free loopback port, stopped when the session ends. Without the package the
tests that need it are skipped, saying how to install it; CI sets TURNOUT_REQUIRE_POSTGRES=1,
which turns that skip into a failure.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

DATABASE = "turnout_test"


def _bin_dir() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(versions[-1]).parent if versions else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _unavailable(reason: str) -> None:
    if os.environ.get("TURNOUT_REQUIRE_POSTGRES"):
        pytest.fail(f"{reason} (TURNOUT_REQUIRE_POSTGRES is set)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    bin_dir = _bin_dir()
    if bin_dir is None:
        _unavailable("PostgreSQL server binaries not found; install them with `apt-get install postgresql`")
    assert bin_dir is not None
    # PostgreSQL refuses to run as root: as root, the cluster belongs to the `postgres` user.
    user = None
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            _unavailable("running as root and there is no `postgres` user to own the test cluster")
    base = Path(tempfile.mkdtemp(prefix="turnout-pg-"))
    data, sockets, log = base / "data", base / "sockets", base / "server.log"
    sockets.mkdir()
    if user is not None:
        for path in (base, sockets):
            os.chown(path, user.pw_uid, user.pw_gid)
    as_owner = {"user": user.pw_uid, "group": user.pw_gid} if user is not None else {}
    port = _free_port()

    def run(*command: str) -> None:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, **as_owner)  # type: ignore[call-overload]
        if done.returncode != 0:
            server_log = log.read_text(errors="replace") if log.exists() else ""
            pytest.fail(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}{server_log}")

    run(str(bin_dir / "initdb"), "-D", str(data), "-U", "turnout", "-A", "trust", "--no-sync", "-E", "UTF8")
    options = f"-h 127.0.0.1 -p {port} -k {sockets} -F"
    run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start")
    try:
        run(str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "turnout", DATABASE)
        yield f"postgresql://turnout@127.0.0.1:{port}/{DATABASE}"
    finally:
        subprocess.run(
            [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True, timeout=60, check=False, **as_owner,  # type: ignore[call-overload]
        )
        shutil.rmtree(base, ignore_errors=True)
