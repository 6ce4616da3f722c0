import importlib
import subprocess
import sys

import pytest

import turnout


def test_public_names_are_pinned() -> None:
    assert sorted(turnout.__all__) == sorted(
        [
            "BudgetExceeded",
            "Completion",
            "ConfigError",
            "EgressRefused",
            "EngineUnavailable",
            "MissingCredentials",
            "ModelBehaviorError",
            "ModelNotFound",
            "PromptTooLong",
            "ReplayDiverged",
            "SchemaError",
            "SchemaImportError",
            "SchemaRefused",
            "ScriptExhausted",
            "Settings",
            "ToolDefinitionError",
            "TurnoutError",
            "TurnoutSignal",
            "UnknownProvider",
            "UnknownRole",
            "UnknownRun",
            "UserError",
            "__version__",
            "complete",
            "complete_sync",
            "get_settings",
            "load_settings",
            "stream",
        ]
    )
    for name in turnout.__all__:
        assert hasattr(turnout, name)


def test_import_turnout_loads_no_heavy_modules() -> None:
    code = (
        "import sys, turnout, turnout.engines, turnout.cli; "
        "print(sorted(m for m in ('litellm', 'llama_cpp', 'torch', 'exllamav2') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_every_subpackage_says_what_lives_there() -> None:
    import turnout.agents
    import turnout.engines
    import turnout.graphs
    import turnout.telemetry
    import turnout.tools

    for package in (
        turnout.agents,
        turnout.engines,
        turnout.graphs,
        turnout.telemetry,
        turnout.tools,
    ):
        assert package.__doc__ and len(package.__doc__) > 40


# Every package's public names, pinned (as httpx's test_exported_members does): a name added or
# dropped is a change to the API and shows here.
PACKAGES: dict[str, list[str]] = {
    "turnout.agents": [
        "Agent",
        "AgentResult",
        "Answer",
        "CodeResult",
        "Coder",
        "Decision",
        "Evidence",
        "FileEdit",
        "Plan",
        "PlanStep",
        "Planner",
        "Retriever",
        "RoleAgent",
        "Route",
        "Router",
        "STEP_KINDS",
        "SearchTerms",
        "Snippet",
        "StepKind",
        "Tool",
        "ToolResult",
        "Verdict",
        "Verifier",
        "edit_problems",
        "tool",
    ],
    "turnout.engines": [
        "Completion",
        "CompletionStream",
        "EgressReport",
        "EngineChunk",
        "EngineRequest",
        "EngineRow",
        "LocalEngine",
        "Locality",
        "Target",
        "Timings",
        "ToolCall",
        "ToolCallDelta",
        "ToolSpec",
        "Usage",
        "UsageMeter",
        "UsageTotals",
        "availability",
        "check_model",
        "check_policy",
        "complete",
        "complete_sync",
        "engine_table",
        "locality_of",
        "model_locality",
        "register_engine",
        "resolve",
        "stream",
        "tag",
        "usage_meter",
    ],
    "turnout.engines.gpu": [
        "ChatTemplate",
        "LLAMA_SIZES",
        "LlamaShape",
        "Scan",
        "StopConditions",
        "StopScanner",
        "make_llama",
        "make_tiny_llama",
        "stop_conditions",
        "write_safetensors",
    ],
    "turnout.engines.privacy": [
        "Cleared",
        "Deployment",
        "EgressReport",
        "FORBIDDEN",
        "Locality",
        "check_policy",
        "deployments",
        "guard",
        "is_loopback_host",
        "locality_of",
        "mcp_server_locality",
        "model_locality",
        "own_locality",
        "release",
        "served_locality",
        "span_capture",
        "split_model",
    ],
    "turnout.graphs": [
        "Assignment",
        "Budget",
        "HybridState",
        "ReplayResult",
        "StepResult",
        "build_hybrid_graph",
        "build_refactor_graph",
        "refactor_settings",
        "replay",
        "run_refactor",
    ],
    "turnout.serve": [
        "check_binding",
        "create_app",
        "require_server_packages",
        "run_server",
        "served_models",
        "serving",
        "serving_settings",
    ],
    "turnout.telemetry": [
        "CallRecord",
        "CaptureMode",
        "SpanRecord",
        "StoredTrace",
        "agent_node",
        "agent_span",
        "capture_mode",
        "chat_span",
        "configure",
        "flush",
        "instrument",
        "is_configured",
        "read_calls",
        "read_trace",
        "redact",
        "run_context",
        "tool_span",
        "trace_files",
        "traced_tool",
    ],
    "turnout.tools": [
        "Chunk",
        "CodeIndex",
        "CodemodError",
        "CodemodName",
        "CodemodResult",
        "CodemodSpec",
        "EditError",
        "EditReport",
        "Hit",
        "IndexStats",
        "Mention",
        "Reference",
        "RepositoryChanged",
        "SearchReplace",
        "TestCommandError",
        "TestReport",
        "Workspace",
        "WorkspaceError",
        "apply_search_replace",
        "apply_unified_diff",
        "available_codemods",
        "convert_to_fstrings",
        "detect_test_command",
        "move_function",
        "rename_symbol",
        "replace_definition",
        "run_tests",
        "tree_fingerprint",
    ],
    "turnout.tools.operations": [
        "AddTypeHints",
        "AnyOperation",
        "COMMAND_LINE_FORMS",
        "ChangeSignature",
        "ConvertFormatting",
        "Edit",
        "Extract",
        "Inline",
        "Move",
        "NewParameter",
        "OPERATIONS",
        "Operation",
        "Plan",
        "PlanError",
        "Rename",
        "load_plan",
        "parse_plan",
        "plan_from_words",
    ],
    "turnout.cli": ["app", "import_schema", "main"],
}


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_each_packages_public_names_are_pinned(package: str) -> None:
    module = importlib.import_module(package)
    assert sorted(module.__all__) == PACKAGES[package]
    for name in module.__all__:
        assert hasattr(module, name), name


def test_every_turnout_error_is_importable_from_turnout() -> None:
    from turnout import errors

    defined = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type)
        and issubclass(value, (errors.TurnoutError, errors.TurnoutSignal))
    }
    assert defined <= set(turnout.__all__), sorted(defined - set(turnout.__all__))


# DESIGN.md's layers: a package imports only the packages below it; telemetry imports none of them.
BELOW: dict[str, set[str]] = {
    "cli": {"serve", "graphs", "agents", "tools", "engines", "telemetry"},
    "serve": {"graphs", "agents", "tools", "engines", "telemetry"},
    "graphs": {"agents", "tools", "engines", "telemetry"},
    "integrations": {"agents", "tools", "engines", "telemetry"},
    "agents": {"tools", "engines", "telemetry"},
    "tools": {"telemetry"},
    "engines": {"telemetry"},
    "telemetry": set(),
}


def test_no_package_imports_one_above_it() -> None:
    import ast
    from pathlib import Path

    root = Path(turnout.__file__).parent
    upward = []
    for path in sorted(root.rglob("*.py")):
        package = path.relative_to(root).parts[0]
        if package not in BELOW:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [node.module]
                if isinstance(node, ast.ImportFrom) and node.module
                else (
                    [a.name for a in node.names] if isinstance(node, ast.Import) else []
                )
            )
            for name in names:
                target = (
                    name.split(".")[1]
                    if name.startswith("turnout.") and name.count(".")
                    else None
                )
                if (
                    target in BELOW
                    and target != package
                    and target not in BELOW[package]
                ):
                    upward.append(f"{path.relative_to(root)} imports {name}")
    assert upward == []
