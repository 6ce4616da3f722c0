import subprocess
import sys

import turnout


def test_public_names_are_pinned() -> None:
    assert sorted(turnout.__all__) == sorted(
        [
            "Completion", "ConfigError", "EngineUnavailable", "MissingCredentials",
            "ModelBehaviorError", "ModelNotFound", "PromptTooLong", "SchemaError", "SchemaImportError", "SchemaRefused",
            "ScriptExhausted", "Settings", "TurnoutError", "UnknownProvider", "UnknownRole",
            "UnknownRun", "UserError", "__version__", "complete", "complete_sync", "get_settings",
            "load_settings", "stream",
        ]
    )
    for name in turnout.__all__:
        assert hasattr(turnout, name)


def test_import_turnout_loads_no_heavy_modules() -> None:
    code = (
        "import sys, turnout, turnout.engines, turnout.cli; "
        "print(sorted(m for m in ('litellm', 'llama_cpp', 'torch', 'exllamav2') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_subpackage_says_what_lives_there() -> None:
    import turnout.agents
    import turnout.engines
    import turnout.graphs
    import turnout.telemetry
    import turnout.tools

    for package in (turnout.agents, turnout.engines, turnout.graphs, turnout.telemetry, turnout.tools):
        assert package.__doc__ and len(package.__doc__) > 40
