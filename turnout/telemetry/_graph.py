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
from turnout.telemetry._manifest import current_context, graph_hash, new_manifest, write_manifest
from turnout.telemetry._spans import mark_failed, tracer

_INSTRUMENTED = "__turnout_instrumented__"


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
            return self.bound.invoke(input, config, **kwargs)

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        with self._span(config):
            return await self.bound.ainvoke(input, config, **kwargs)

    def _span(self, config: RunnableConfig | None) -> Any:
        return _current_span(self.span_name, _node_attributes(self.node, self.agent, config))


class _current_span:
    """start_as_current_span that records failures the GenAI way (error.type)."""

    def __init__(self, name: str, attributes: dict[str, Any]) -> None:
        self.manager = tracer().start_as_current_span(
            name,
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        )

    def __enter__(self) -> trace.Span:
        self.span = self.manager.__enter__()
        return self.span

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> Any:
        if exc is not None and not _is_control_flow(exc):
            mark_failed(self.span, exc)
        return self.manager.__exit__(exc_type, exc, tb)


def _is_control_flow(exc: BaseException) -> bool:
    # LangGraph's interrupts and Command(goto=...) travel as exceptions; they are not errors.
    return type(exc).__name__ in ("GraphInterrupt", "NodeInterrupt", "ParentCommand", "GraphBubbleUp")


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

    Idempotent. Works for sync and async runs (`invoke`, `ainvoke`, `stream`, `astream`).
    """
    if getattr(graph, _INSTRUMENTED, False):
        return graph
    workflow = name or getattr(graph, "name", None) or "graph"
    structure = graph_hash(graph)
    for node_name, node in list(graph.nodes.items()):
        if node_name.startswith("__") or node.bound is None or isinstance(node.bound, TracedNode):
            continue
        graph.nodes[node_name] = node.copy({"bound": TracedNode(node.bound, node_name)})

    original_stream = graph.stream
    original_astream = graph.astream

    @functools.wraps(original_stream)
    def stream(input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Iterator[Any]:
        span = _start_run(workflow, structure, input, config)
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            yield from original_stream(input, config, **kwargs)
        except BaseException as exc:
            if not _is_control_flow(exc):
                mark_failed(span, exc)
            raise
        finally:
            _detach(token)
            span.end()

    @functools.wraps(original_astream)
    async def astream(input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> AsyncIterator[Any]:
        span = _start_run(workflow, structure, input, config)
        parent = trace.set_span_in_context(span)
        try:
            iterator = original_astream(input, config, **kwargs)
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
            if not _is_control_flow(exc):
                mark_failed(span, exc)
            raise
        finally:
            span.end()

    graph.stream = stream
    graph.astream = astream
    setattr(graph, _INSTRUMENTED, True)
    return graph


def _detach(token: Any) -> None:
    try:
        otel_context.detach(token)
    except Exception:  # a generator closed from another context: nothing to restore
        pass
