import subprocess
import sys

import turnout.serve


def test_public_names_are_pinned() -> None:
    assert sorted(turnout.serve.__all__) == [
        "check_binding", "create_app", "require_server_packages", "run_server", "served_models", "serving",
        "serving_settings",
    ]
    assert turnout.serve.__doc__ and len(turnout.serve.__doc__) > 40


def test_importing_the_package_loads_no_web_framework() -> None:
    code = (
        "import sys, turnout.serve; "
        "print(sorted(m for m in ('fastapi', 'uvicorn', 'starlette', 'litellm') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
