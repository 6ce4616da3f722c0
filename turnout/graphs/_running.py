"""Running a graph the way the CLI does: checkpoint serialization, threads, resume, loading."""

from __future__ import annotations

import typing
import uuid
from collections.abc import Mapping
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.config import get_config
from langgraph.typing import ContextT
from pydantic import BaseModel

from turnout._imports import import_object
from turnout.errors import UnknownRun, UserError


def turnout_serializer(extra_types: tuple[type, ...] = ()) -> Any:
    """A checkpoint serializer that may revive the pydantic models in turnout's graph states
    (and `extra_types`) from msgpack, and nothing outside LangGraph's safe list besides."""
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    from turnout.graphs._hybrid_state import HybridState, WorkOrder
    from turnout.graphs._refactor_state import RefactorState

    types = [*state_models(HybridState, WorkOrder, RefactorState), *extra_types]
    return JsonPlusSerializer(allowed_msgpack_modules=[(t.__module__, t.__name__) for t in types])


def state_models(*schemas: type) -> list[type[BaseModel]]:
    """Every pydantic model a state schema can hold: in its keys' types and, recursively, in
    those models' fields."""
    found: dict[type[BaseModel], None] = {}

    def visit(hint: Any) -> None:
        if isinstance(hint, type) and issubclass(hint, BaseModel):
            if hint not in found:
                found[hint] = None
                for field in hint.model_fields.values():
                    visit(field.annotation)
            return
        for argument in typing.get_args(hint):
            visit(argument)

    for schema in schemas:
        for hint in typing.get_type_hints(schema).values():
            visit(hint)
    return list(found)


def new_thread_id() -> str:
    return uuid.uuid4().hex[:12]


def thread_config(thread_id: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread_id}}


async def require_checkpoint(graph: Any, thread_id: str, where: str) -> None:
    """Raise UnknownRun unless `thread_id` has a checkpoint to resume from."""
    snapshot = await graph.aget_state(thread_config(thread_id))
    if not snapshot.values and not snapshot.next:
        raise UnknownRun(
            f"no checkpoint for thread {thread_id!r} in {where}; start a new run without --resume"
        )


def load_graph(spec: str, checkpointer: BaseCheckpointSaver | None) -> Any:
    """`module:attr` → a runnable graph: a compiled graph, a StateGraph (compiled here with
    the checkpointer), or a factory function returning either."""
    try:
        target = import_object(spec)
    except ValueError:
        raise UserError(f"graph {spec!r} must be 'hybrid' or look like package.module:attribute") from None
    except ImportError as exc:
        raise UserError(f"cannot load graph {spec!r}: {exc}") from None
    if callable(target) and not hasattr(target, "ainvoke") and not hasattr(target, "compile"):
        target = target()
    if hasattr(target, "compile") and not hasattr(target, "ainvoke"):
        target = target.compile(checkpointer=checkpointer)
    if not hasattr(target, "ainvoke"):
        raise UserError(f"{spec!r} is not a LangGraph graph (no ainvoke/compile)")
    if checkpointer is not None and getattr(target, "checkpointer", None) is None:
        target.checkpointer = checkpointer
    return target


# Under a "__" key: LangGraph never copies those into checkpoint metadata.
_CONTEXT_KEY = "__turnout_context"


def with_context(graph: CompiledStateGraph[Any, Any, Any, Any], context: Any) -> CompiledStateGraph[Any, Any, Any, Any]:
    """`graph` with `context` bound as its nodes' context (see `required_context`). Not as
    LangGraph's `context_schema`: LangGraph Server fills a run's context from the run's JSON
    `configurable`, and agents, settings and a code index are no JSON."""
    bound = graph.with_config({"configurable": {_CONTEXT_KEY: context}})
    bound._serde_allowlist = getattr(graph, "_serde_allowlist", None)  # what compile() set; a copy drops it
    return bound


def required_context(runtime: Runtime[Any], kind: type[ContextT], graph: str) -> ContextT:
    """A node's context: the run's own (`context=` a `kind`), else the one its builder bound;
    a UserError that says how to give one when there is neither (a node called alone)."""
    if isinstance(runtime.context, kind):
        return runtime.context
    try:
        bound = get_config().get("configurable", {}).get(_CONTEXT_KEY)
    except RuntimeError:  # called outside a run
        bound = None
    if isinstance(bound, kind):
        return bound
    raise UserError(
        f"this {graph} graph's nodes need their context ({kind.__name__}: agents, settings, code index): "
        f"build the graph with turnout's build_{graph}_graph(), which binds one, or pass context={kind.__name__}(…)"
    )


def role_models(models: Mapping[str, Any] | None) -> dict[str, Any]:
    """A builder's `models` (role → model string or `Script`), checked: each names a role."""
    from turnout.config import ROLE_NAMES

    models = dict(models or {})
    if unknown := sorted(set(models) - set(ROLE_NAMES)):
        raise UserError(f"models= names {', '.join(map(repr, unknown))}, which is no role: roles are {', '.join(ROLE_NAMES)}")
    return models
