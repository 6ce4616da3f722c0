"""Where graph checkpoints live: a SQLite file on one machine, PostgreSQL for servers.

    async with open_checkpointer("postgres://turnout@db:5432/turnout") as saver:
        graph = build_hybrid_graph(repo=".", checkpointer=saver)

Both savers are LangGraph's own (`langgraph-checkpoint-sqlite`, `langgraph-checkpoint-postgres`)
with turnout's serializer, so a run started against one process's saver resumes in any other.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver

from turnout.errors import UserError

_POSTGRES = re.compile(r"^postgres(?:ql)?://", re.IGNORECASE)
_SQLITE = re.compile(r"^sqlite:(?://)?", re.IGNORECASE)
_URL_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_PASSWORD = re.compile(r"(://[^:/@]+:)[^@]*@")


class ThreadBusy(UserError):
    """Another process is running this thread; two runs on one thread would interleave."""


def is_postgres(spec: str) -> bool:
    return bool(_POSTGRES.match(spec.strip()))


def redacted(spec: str) -> str:
    """`spec` with any password in it replaced, for messages and logs."""
    return _PASSWORD.sub(r"\1***@", spec)


@asynccontextmanager
async def open_checkpointer(spec: str | Path) -> AsyncIterator[BaseCheckpointSaver]:
    """The saver `spec` names: a `postgres://` / `postgresql://` URL, or a SQLite file path
    (optionally written `sqlite:///path`). Tables are created on first use."""
    text = str(spec).strip()
    if not text:
        raise UserError("the checkpointer is empty: give a SQLite file path or a postgres:// URL")
    if is_postgres(text):
        async with postgres_checkpointer(text) as saver:
            yield saver
    else:
        async with sqlite_checkpointer(_sqlite_path(text)) as saver:
            yield saver


def _sqlite_path(text: str) -> Path:
    """The SQLite file a spec names; any other URL scheme is refused (it would become a folder
    name on disk, a password in it included)."""
    if (scheme := _URL_SCHEME.match(text)) and not _SQLITE.match(text):
        raise UserError(
            f"unknown checkpointer scheme {scheme[1]!r} in {redacted(text)}: checkpoints go to a SQLite file "
            "(a path, or sqlite:///path) or to PostgreSQL (postgres:// or postgresql://)"
        )
    return Path(_SQLITE.sub("", text)).expanduser()


@asynccontextmanager
async def thread_lock(spec: str | Path, thread_id: str) -> AsyncIterator[None]:
    """Hold `thread_id` for one process while it runs, or raise ThreadBusy at once: a file
    lock beside a SQLite file, an advisory lock in PostgreSQL. Released when the block ends,
    or when the process dies."""
    text = str(spec).strip()
    if is_postgres(text):
        async with _postgres_thread_lock(text, thread_id):
            yield
        return
    path = _sqlite_path(text)
    folder = path.with_name(path.name + ".threads")
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    lock_file = folder / (hashlib.sha256(thread_id.encode()).hexdigest()[:32] + ".lock")
    handle = await asyncio.to_thread(open, lock_file, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise ThreadBusy(
                f"thread {thread_id!r} is being run by {holder}; wait for it to finish, or start a new thread"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()}")
        handle.flush()
        yield
    finally:
        handle.close()  # closing releases the lock


@asynccontextmanager
async def _postgres_thread_lock(url: str, thread_id: str) -> AsyncIterator[None]:
    psycopg = _psycopg()
    key = int.from_bytes(hashlib.sha256(f"turnout thread {thread_id}".encode()).digest()[:8], "big", signed=True)
    try:
        connection = await psycopg.AsyncConnection.connect(url, autocommit=True)
    except (psycopg.Error, ValueError) as exc:
        raise _unreachable(url, exc) from None
    async with connection:
        row = await (await connection.execute("SELECT pg_try_advisory_lock(%s)", (key,))).fetchone()
        if not row or not row[0]:
            raise ThreadBusy(
                f"thread {thread_id!r} is being run by another process (PostgreSQL advisory lock held); "
                "wait for it to finish, or start a new thread"
            )
        try:
            yield
        finally:
            await connection.execute("SELECT pg_advisory_unlock(%s)", (key,))


@asynccontextmanager
async def sqlite_checkpointer(path: Path | str) -> AsyncIterator[BaseCheckpointSaver]:
    """An `AsyncSqliteSaver` on `path` (the sync SqliteSaver cannot serve `ainvoke`)."""
    import aiosqlite
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    from turnout.graphs._running import turnout_serializer

    path = Path(path).expanduser()
    if path.is_dir():
        raise UserError(f"checkpoints {path} is a directory; give a file, e.g. {path / 'checkpoints.sqlite'}")
    path.parent.mkdir(parents=True, exist_ok=True)
    async with aiosqlite.connect(str(path)) as connection:
        yield AsyncSqliteSaver(connection, serde=turnout_serializer())


@asynccontextmanager
async def postgres_checkpointer(url: str) -> AsyncIterator[BaseCheckpointSaver]:
    """An `AsyncPostgresSaver` on `url`, its tables migrated (`setup()` is idempotent)."""
    psycopg = _psycopg()
    try:
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    except ImportError:
        raise UserError(_POSTGRES_EXTRA) from None

    from turnout.graphs._running import turnout_serializer

    async with AsyncExitStack() as stack:
        try:
            saver = await stack.enter_async_context(
                AsyncPostgresSaver.from_conn_string(url, serde=turnout_serializer())
            )
            await saver.setup()
        except (psycopg.Error, ValueError) as exc:
            raise _unreachable(url, exc) from None
        yield saver


_POSTGRES_EXTRA = "Postgres checkpoints need langgraph-checkpoint-postgres: pip install 'turnout[postgres]'"


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise UserError(_POSTGRES_EXTRA) from None
    return psycopg


def _unreachable(url: str, exc: BaseException) -> UserError:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return UserError(
        f"cannot open checkpoints at {redacted(url)}: {reason}; check that PostgreSQL is "
        "running there and that the user, password and database in the URL are right"
    )
