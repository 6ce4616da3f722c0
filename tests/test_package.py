import importlib
import subprocess
import sys

import pytest

import turnout


def test_public_names_are_pinned() -> None:
    assert sorted(turnout.__all__) == sorted(
        [
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
        "Route",
        "Router",
        "STEP_KINDS",
        "SearchTerms",
        "Snippet",
        "StepKind",
        "Verdict",
        "Verifier",
        "edit_problems",
    ],
    "turnout.engines": [
        "Completion",
        "CompletionStream",
        "EgressReport",
        "EngineChunk",
        "EngineRequest",
        "LocalEngine",
        "Locality",
        "Target",
        "Timings",
        "Usage",
        "UsageMeter",
        "UsageTotals",
        "availability",
        "check_model",
        "check_policy",
        "complete",
        "complete_sync",
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
    "turnout.graphs": [
        "Assignment",
        "Budget",
        "HybridState",
        "StepResult",
        "build_hybrid_graph",
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
        "replay",
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
