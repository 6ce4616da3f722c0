"""`turnout serve`: this machine's local engines behind an OpenAI-compatible HTTP API."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.markup import escape

from turnout.cli._common import ConfigOption, errors, fail
from turnout.errors import ConfigError, TurnoutError


def _option(loc: tuple[Any, ...]) -> str:
    return str(loc[0]).replace("_", "-") if loc else "serve"


def _overrides(
    host: str | None,
    port: int | None,
    api_key: str | None,
    models: list[str] | None,
    max_concurrency: int | None,
    max_queue: int | None,
) -> dict[str, Any]:
    given = {
        "host": host, "port": port, "api_key": api_key, "models": models or None,
        "max_concurrency": max_concurrency, "max_queue": max_queue,
    }
    return {key: value for key, value in given.items() if value is not None}


def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1; elsewhere needs an API key).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind (default 8000; 0: any free port).")] = None,
    api_key: Annotated[
        str | None, typer.Option("--api-key", help="Key clients must send as a Bearer token (or TURNOUT_SERVE__API_KEY).")
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option("--model", "-m", help="Model to serve, e.g. llamacpp/smollm2 (repeatable; default: the roles' local models)."),
    ] = None,
    max_concurrency: Annotated[int | None, typer.Option(help="Requests generating at once.")] = None,
    max_queue: Annotated[int | None, typer.Option(help="Requests waiting for a slot; beyond this, 429.")] = None,
    config: ConfigOption = None,
) -> None:
    """Serve this machine's local engines over an OpenAI-compatible HTTP API (/v1/chat/completions)."""
    from turnout import telemetry
    from turnout.config import ServeSettings, load_settings, use_settings
    from turnout.serve import create_app, require_server_packages, serving_settings
    from turnout.serve._config import api_key_of

    try:
        require_server_packages()
        settings = serving_settings(load_settings(config))
        serve_settings = {**settings.serve.model_dump(), **_overrides(host, port, api_key, model, max_concurrency, max_queue)}
        settings = settings.model_copy(update={"serve": ServeSettings.model_validate(serve_settings)})
        use_settings(settings)
        telemetry.configure()
        app = create_app(settings)
    except TurnoutError as exc:
        raise fail(exc) from None
    except ValidationError as exc:  # an option out of range
        raise fail(ConfigError("; ".join(f"--{_option(e['loc'])}: {e['msg']}" for e in exc.errors()))) from None

    from turnout.serve._server import run_app

    served = app.state.chat.models
    key = "required (Bearer)" if api_key_of(settings.serve) else "none (loopback only)"

    def ready(url: str) -> None:
        errors.print(f"[bold]turnout serve[/] · OpenAI base URL [cyan]{escape(url)}[/] · API key {key}", highlight=False, soft_wrap=True)
        for name in served:
            errors.print(f"  serving [green]{escape(name)}[/]", highlight=False)
        limits = settings.serve
        errors.print(
            f"  {limits.max_concurrency} at once, {limits.max_queue} queued, then 429 · Ctrl-C stops",
            highlight=False, style="dim",
        )

    try:
        run_app(app, settings, ready)
    except TurnoutError as exc:
        raise fail(exc) from None
    except KeyboardInterrupt:  # uvicorn has shut down gracefully, then re-raised Ctrl-C
        errors.print("turnout serve stopped", style="dim")
