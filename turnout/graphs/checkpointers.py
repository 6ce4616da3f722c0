"""Where graph checkpoints live: a SQLite file on one machine, PostgreSQL for servers.

    async with open_checkpointer("postgres://turnout@db:5432/turnout") as saver:
        graph = build_hybrid_graph(repo=".", checkpointer=saver)

Both savers are LangGraph's own (`langgraph-checkpoint-sqlite`, `langgraph-checkpoint-postgres`)
with turnout's serializer, so a run started against one process's saver resumes in any other.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from langgraph.checkpoint.base import BaseCheckpointSaver

from turnout.errors import UserError

_POSTGRES = re.compile(r"^postgres(?:ql)?://", re.IGNORECASE)
_SQLITE = re.compile(r"^sqlite:(?://)?", re.IGNORECASE)
_PASSWORD = re.compile(r"(://[^:/@]+:)[^@]*@")


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
        async with sqlite_checkpointer(_SQLITE.sub("", text)) as saver:
            yield saver


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
    try:
        import psycopg
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    except ImportError:
        raise UserError(
            "Postgres checkpoints need langgraph-checkpoint-postgres: pip install 'turnout[postgres]'"
        ) from None

    from turnout.graphs._running import turnout_serializer

    async with AsyncExitStack() as stack:
        try:
            saver = await stack.enter_async_context(
                AsyncPostgresSaver.from_conn_string(url, serde=turnout_serializer())
            )
            await saver.setup()
        except (psycopg.Error, ValueError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(
                f"cannot open checkpoints at {redacted(url)}: {reason}; check that PostgreSQL is "
                "running there and that the user, password and database in the URL are right"
            ) from None
        yield saver
