"""Tracing for any compiled LangGraph graph, turnout's or a user's: `instrument(graph)`.

Each run gets a root `invoke_workflow {graph}` span; each node execution gets a span made
*current* while the node runs (`invoke_agent {agent}` for turnout agents, the node's name
otherwise), so model calls and tools inside a node nest under it, and branches fanned out
with `Send` are siblings under the step that sent them.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.runnables import Runnable, RunnableConfig
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from turnout.telemetry import _conventions as sc
from turnout.telemetry._manifest import (
    current_context,
    graph_hash,
    new_manifest,
    write_manifest,
)
from turnout.telemetry._spans import (
    is_control_flow,
    mark_error,
    mark_failed,
    operation_span,
    tracer,
)


def agent_name(runnable: Any) -> str | None:
    """The turnout agent behind a node, if it is one (agents carry `agent_name`)."""
    for candidate in (runnable, getattr(runnable, "func", None), getattr(runnable, "afunc", None)):
        name = getattr(candidate, "agent_name", None) or getattr(
            getattr(candidate, "__self__", None), "agent_name", None
        )
        if isinstance(name, str):
            return name
    return None


def _node_attributes(node: str, agent: str | None, config: RunnableConfig | None) -> dict[str, Any]:
    config = config or {}
    configurable = config.get("configurable") or {}
    metadata = config.get("metadata") or {}
    attributes: dict[str, Any] = {sc.LANGGRAPH_NODE: node}
    if agent:
        attributes[sc.GEN_AI_OPERATION_NAME] = sc.INVOKE_AGENT
        attributes[sc.GEN_AI_AGENT_NAME] = agent
    step = metadata.get("langgraph_step")
    if isinstance(step, int):
        attributes[sc.LANGGRAPH_STEP] = step
    thread_id = configurable.get("thread_id") or metadata.get("thread_id")
    if thread_id:
        attributes[sc.GEN_AI_CONVERSATION_ID] = str(thread_id)
    namespace = configurable.get("checkpoint_ns") or ""
    if namespace:
        attributes[sc.LANGGRAPH_CHECKPOINT_NS] = namespace
    # Inside a node, the checkpoint the step started from is the one its parent namespace
    # maps to ("" for the top-level graph).
    checkpoint_id = configurable.get("checkpoint_id") or (configurable.get("checkpoint_map") or {}).get(
        namespace.rpartition("|")[0]
    )
    if checkpoint_id:
        attributes[sc.LANGGRAPH_CHECKPOINT_ID] = str(checkpoint_id)
    return attributes


class TracedNode(Runnable[Any, Any]):
    """A node's runnable inside a span that is current while it runs."""

    def __init__(self, bound: Runnable[Any, Any], node: str) -> None:
        self.bound = bound
        self.node = node
        self.agent = agent_name(bound)
        self.span_name = f"{sc.INVOKE_AGENT} {self.agent}" if self.agent else node

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        with self._span(config):
            return _record_status(self.bound.invoke(input, config, **kwargs))

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        with self._span(config):
            return _record_status(await self.bound.ainvoke(input, config, **kwargs))

    def _span(self, config: RunnableConfig | None) -> Any:
        return operation_span(self.span_name, _node_attributes(self.node, self.agent, config))


_ROOT = "turnout.run.root_span"  # the run's root span, in the OpenTelemetry context of its nodes


def _record_status(update: Any) -> Any:
    """A node that returns a run status (`succeeded`, `failed`, `stuck`, …) puts it on the run's
    root span, so the trace says how the run ended, not only that it raised nothing."""
    if isinstance(update, dict) and isinstance(update.get("status"), str):
        root = otel_context.get_value(_ROOT)
        if root is not None:
            root.set_attribute(sc.TURNOUT_RUN_STATUS, update["status"])
            if update["status"] in sc.UNSUCCESSFUL_RUN_STATUSES:
                mark_error(root, update["status"], str(update.get("reason") or update["status"]))
    return update


def _run_context(span: Any) -> Any:
    return otel_context.set_value(_ROOT, span, trace.set_span_in_context(span))


def _workflow_attributes(name: str, config: RunnableConfig | None) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        sc.GEN_AI_OPERATION_NAME: sc.INVOKE_WORKFLOW,
        sc.GEN_AI_WORKFLOW_NAME: name,
    }
    thread_id = ((config or {}).get("configurable") or {}).get("thread_id")
    if thread_id:
        attributes[sc.GEN_AI_CONVERSATION_ID] = str(thread_id)
    return attributes


def _start_run(workflow: str, structure: str, input: Any, config: RunnableConfig | None) -> Any:
    """The run's root span, current from here; and its manifest, when recording is on."""
    from turnout.config import get_settings

    attributes = _workflow_attributes(workflow, config)
    replay_of = current_context().get("replay_of")
    if replay_of:
        attributes[sc.TURNOUT_REPLAY_OF] = str(replay_of)
    span = tracer().start_span(f"{sc.INVOKE_WORKFLOW} {workflow}", kind=SpanKind.INTERNAL, attributes=attributes)
    settings = get_settings()
    context = span.get_span_context()
    if settings.record_calls and settings.traces_path is not None and context.is_valid and input is not None:
        thread_id = ((config or {}).get("configurable") or {}).get("thread_id")
        manifest = new_manifest(f"{context.trace_id:032x}", workflow, structure, input, thread_id)
        write_manifest(settings.traces_path, manifest)
    return span


def instrument(graph: Any, *, name: str | None = None) -> Any:
    """Trace every run of a compiled LangGraph graph; returns the same graph.

        graph = turnout.telemetry.instrument(builder.compile())

    Idempotent. Works for sync and async runs (`invoke`, `ainvoke`, `stream`, `astream`), and
    for the graph's copies (`with_config`, `copy`: what LangGraph Server runs).
    """
    if isinstance(getattr(graph, _RUN, None), tuple):
        return graph
    for node_name, node in list(graph.nodes.items()):
        if node_name.startswith("__") or node.bound is None or isinstance(node.bound, TracedNode):
            continue
        graph.nodes[node_name] = node.copy({"bound": TracedNode(node.bound, node_name)})
    setattr(graph, _RUN, (name or getattr(graph, "name", None) or "graph", graph_hash(graph)))
    graph.__class__ = _traced_class(type(graph))
    return graph


_RUN = "_turnout_run"  # (workflow name, structure hash) on an instrumented graph


@functools.cache
def _traced_class(base: type) -> type:
    """`base` with every run inside a root span. At class level, so that copies, which
    LangGraph makes with `self.__class__(**attributes)`, stay traced."""

    class Traced(base):  # type: ignore[misc, valid-type]
        def copy(self, update: dict[str, Any] | None = None) -> Any:
            copied = super().copy(update)
            # The constructor drops what was set on the instance after it: our run identity,
            # and the msgpack allowlist compile() computed (strict checkpoint revival needs it).
            setattr(copied, _RUN, getattr(self, _RUN))
            copied._serde_allowlist = getattr(self, "_serde_allowlist", None)
            return copied

        def stream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Iterator[Any]:
            span = _start_run(*getattr(self, _RUN), input, config)
            token = otel_context.attach(_run_context(span))
            try:
                yield from super().stream(input, config, **kwargs)
            except BaseException as exc:
                if not is_control_flow(exc):
                    mark_failed(span, exc)
                raise
            finally:
                _detach(token)
                span.end()

        async def astream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> AsyncIterator[Any]:
            span = _start_run(*getattr(self, _RUN), input, config)
            parent = _run_context(span)
            try:
                iterator = super().astream(input, config, **kwargs)
                while True:
                    token = otel_context.attach(parent)
                    try:
                        chunk = await anext(iterator)
                    except StopAsyncIteration:
                        return
                    finally:
                        _detach(token)
                    yield chunk
            except BaseException as exc:
                if not is_control_flow(exc):
                    mark_failed(span, exc)
                raise
            finally:
                span.end()

    Traced.__name__ = Traced.__qualname__ = f"Traced{base.__name__}"
    return Traced


def _detach(token: Any) -> None:
    try:
        otel_context.detach(token)
    except Exception:  # a generator closed from another context: nothing to restore
        pass
