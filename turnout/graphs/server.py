"""turnout's graphs on LangGraph Server: the factories `langgraph.json` names.

    langgraph dev --config langgraph.json          # in-memory server, for development
    langgraph up                                   # Docker, Postgres persistence

LangGraph Server calls a factory whenever it needs a graph — every run, every state read,
every schema request — and then copies the graph with its own checkpointer and store. So
the factories here compile without a checkpointer, keep what they build (a graph per
repository and settings), and return a graph whose copies stay traced like CLI runs.

- Settings: the file `TURNOUT_CONFIG` names, else `./turnout.toml`, else the defaults;
  `TURNOUT_*` variables override either, as everywhere in turnout.
- `hybrid`'s repository: the run's `config["configurable"]["repo"]`, else `TURNOUT_REPO`,
  else the server's working directory. `refactor` takes `repo` in its input. With
  `TURNOUT_REPO_ROOTS` set, either must lie under one of the directories it names.
- Input arrives as JSON and is validated into the state's types (`budget` becomes a
  `Budget`); a bad repository or config fails the run with a message the client can read.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import threading
import typing
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langgraph.graph.state import CompiledStateGraph
from pydantic import TypeAdapter

from turnout.config import Settings, load_settings, use_settings
from turnout.errors import ConfigError, UserError

if TYPE_CHECKING:
    from langchain_core.runnables import RunnableConfig
    from langgraph_sdk.runtime import ServerRuntime

CONFIG_ENV = "TURNOUT_CONFIG"
REPO_ENV = "TURNOUT_REPO"
REPO_ROOTS_ENV = "TURNOUT_REPO_ROOTS"
MAX_REPOS = 8  # hybrid graphs kept at once, each holding a code index

_lock = threading.Lock()
_graphs: OrderedDict[tuple[str, ...], tuple[Any, Any]] = OrderedDict()  # key -> (graph, its index)
_locks: dict[tuple[str, ...], threading.Lock] = {}


async def hybrid(config: RunnableConfig, runtime: ServerRuntime | None = None) -> Any:
    """The hybrid graph over the run's repository (see the module docstring).

    Only runs need the code index: for schema requests and state reads (`runtime` says which)
    the graph is built without one, so listing assistants never indexes the working directory.
    """
    return await _built(_hybrid, config, _executing(runtime))


async def refactor(config: RunnableConfig, runtime: ServerRuntime | None = None) -> Any:
    """The refactor graph; each run names its repository in its input (`{"request", "repo"}`)."""
    return await _built(_refactor)


def server_settings() -> Settings:
    """turnout's settings for a server process: `TURNOUT_CONFIG`, else `./turnout.toml`, else
    the defaults, with `TURNOUT_*` overrides. A bad file is a ConfigError naming the variable."""
    path = os.environ.get(CONFIG_ENV, "").strip()
    if path and not Path(path).expanduser().is_file():
        raise ConfigError(
            f"{CONFIG_ENV}={path} is not a file; point it at a turnout.toml, or unset it to use "
            "./turnout.toml or the defaults"
        )
    try:
        return load_settings(Path(path).expanduser() if path else None)
    except ConfigError as exc:
        raise ConfigError(f"{exc} ({CONFIG_ENV}={path})" if path else str(exc)) from None


def repo_for(config: RunnableConfig | None) -> Path:
    """The hybrid graph's repository: `configurable.repo`, else `TURNOUT_REPO`, else the
    working directory; it must be an existing directory."""
    configurable = (config or {}).get("configurable") or {}
    for where, value in (("configurable repo", configurable.get("repo")), (REPO_ENV, os.environ.get(REPO_ENV))):
        if value:
            break
    else:
        where, value = "the server's working directory", "."
    root = Path(str(value)).expanduser().resolve()
    if not root.is_dir():
        raise UserError(
            f"{where} {value!r} is not a directory; pass the repository to work on as "
            f'config={{"configurable": {{"repo": "/path/to/repo"}}}} or set {REPO_ENV}'
        )
    return allowed_repo(root, where)


def repo_roots() -> list[Path]:
    """The directories `TURNOUT_REPO_ROOTS` names (separated by the OS path separator), resolved."""
    return [Path(r).expanduser().resolve() for r in os.environ.get(REPO_ROOTS_ENV, "").split(os.pathsep) if r.strip()]


def allowed_repo(root: Path, where: str = "repo") -> Path:
    """`root`, when `TURNOUT_REPO_ROOTS` (directories separated by the OS path separator)
    is unset or holds it: a shared server then works only on the repositories it was meant
    for, whatever path a client sends."""
    roots = repo_roots()
    resolved = Path(root).expanduser().resolve()
    if roots and not any(resolved == r or r in resolved.parents for r in roots):
        raise UserError(
            f"{where} {str(root)!r} is outside the repositories this server works on "
            f"({REPO_ROOTS_ENV}={os.environ[REPO_ROOTS_ENV]}); ask for one under those"
        )
    return resolved


def clear_cache() -> None:
    """Forget every graph built so far (tests; a server never needs to)."""
    with _lock:
        _graphs.clear()
        _locks.clear()


async def _built(build: Any, *args: Any) -> Any:
    """`build(*args)` in a worker thread (it reads files and may index a repository, which must
    not block the server's event loop), with turnout's caller mistakes made readable: LangGraph
    Server shows clients the message of a ValueError but replaces any other exception's with
    "An internal error occurred". The error keeps its type, and gains ValueError."""
    try:
        return await asyncio.to_thread(build, *args)
    except UserError as exc:
        raise _shown_to_clients(type(exc))(*exc.args) from exc


@functools.cache
def _shown_to_clients(error: type[UserError]) -> type[UserError]:
    return type(error.__name__, (error, ValueError), {"__module__": error.__module__, "__doc__": error.__doc__})


def _executing(runtime: Any) -> bool:
    # Called from Python without a runtime: a graph that can run.
    return runtime is None or getattr(runtime, "execution_runtime", None) is not None


def _prepared() -> tuple[Settings, str]:
    """Settings loaded and installed, tracing on, litellm imported: all in the factory's worker
    thread, so none of it blocks the server's event loop later."""
    from turnout import telemetry
    from turnout.engines._provider import litellm_module
    from turnout.telemetry._calls import CALLS_DIR

    settings = server_settings()
    use_settings(settings)
    telemetry.configure()  # once per process; later calls are no-ops
    litellm_module()  # the first model call would otherwise import it on the event loop
    if settings.traces_path is not None:  # where runs write their manifests and call recordings
        (settings.traces_path / CALLS_DIR).mkdir(parents=True, exist_ok=True)
    return settings, hashlib.sha256(settings.model_dump_json().encode()).hexdigest()[:16]


def _hybrid(config: RunnableConfig | None, executing: bool) -> Any:
    from turnout.graphs.hybrid import build_hybrid_graph, index_repository

    settings, fingerprint = _prepared()
    if not executing:
        return _cached(("hybrid", fingerprint), lambda: build_hybrid_graph(settings=settings))
    root = repo_for(config)
    key = ("hybrid", fingerprint, str(root))
    with _lock_for(key):
        # A fresh index object each run (loaded from the on-disk cache, then refreshed: only
        # changed files are re-read). A graph keeps its own index untouched while runs may be
        # searching it; a repository whose code changed gets a new graph.
        index = index_repository(root)  # shared with build_hybrid_graph and `turnout run`
        cached = _graphs.get(key)
        if cached is None or cached[1].chunks != index.chunks:
            cached = (_served(build_hybrid_graph(index=index, settings=settings)), index)
        _remember(key, cached)
    return cached[0]


def _refactor() -> Any:
    from turnout.graphs.refactor import build_refactor_graph

    settings, fingerprint = _prepared()
    # Workspaces and patches under ./.turnout, named by absolute paths: a client of the server
    # cannot resolve a path relative to the server's working directory.
    work_dir = Path(".turnout").resolve()
    return _cached(("refactor", fingerprint), lambda: build_refactor_graph(settings=settings, work_dir=work_dir))


def _cached(key: tuple[str, ...], build: Any) -> Any:
    with _lock_for(key):
        if key not in _graphs:
            _remember(key, (_served(build()), None))
    return _graphs[key][0]


def _lock_for(key: tuple[str, ...]) -> threading.Lock:
    """One lock per graph: building one (indexing a large repository) holds up no other."""
    with _lock:
        return _locks.setdefault(key, threading.Lock())


def _remember(key: tuple[str, ...], entry: tuple[Any, Any]) -> None:
    with _lock:
        _graphs[key] = entry
        _graphs.move_to_end(key)
        repos = [k for k in _graphs if len(k) == 3]  # (graph, settings, repository)
        for old in repos[: max(0, len(repos) - MAX_REPOS)]:
            del _graphs[old]


class _ServedGraph(CompiledStateGraph):
    """A compiled graph with typed input: it arrives as JSON, and LangGraph does not validate
    a TypedDict state, so a `budget` dict would reach nodes that expect a `Budget`. Input keys
    are validated into the state's own types here (a bad value is a pydantic ValidationError,
    which the client sees). Copies the server makes per request stay traced (`instrument`)."""

    def stream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return super().stream(_typed(self, input), config, **kwargs)

    def astream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return super().astream(_typed(self, input), config, **kwargs)


def _served(graph: Any) -> Any:
    from turnout.telemetry import instrument

    attrs = {k: v for k, v in graph.__dict__.items() if k != "__orig_class__"}
    served = _ServedGraph(**attrs)
    served._serde_allowlist = getattr(graph, "_serde_allowlist", None)
    return instrument(served)


def _typed(graph: Any, input: Any) -> Any:
    if not isinstance(input, dict):  # None (continue from the checkpoint) or a Command
        return input
    if isinstance(input.get("repo"), str):  # the refactor graph's repository
        try:
            allowed_repo(Path(input["repo"]), "input repo")
        except UserError as exc:
            raise _shown_to_clients(type(exc))(*exc.args) from None
    adapters = _adapters(graph.builder.input_schema)
    return {key: adapters[key].validate_python(value) if key in adapters else value for key, value in input.items()}


@functools.cache
def _adapters(schema: type) -> dict[str, TypeAdapter[Any]]:
    # Per key: pydantic cannot validate a typing.TypedDict as a whole on Python 3.11.
    return {key: TypeAdapter(hint) for key, hint in typing.get_type_hints(schema).items()}
