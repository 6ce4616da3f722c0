"""What every `turnout` command shares: consoles, the --config option, error exits."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from turnout.config import Settings, load_settings, use_settings
from turnout.errors import TurnoutError, UserError

console = Console()
errors = Console(stderr=True)

ConfigOption = Annotated[
    Optional[Path],
    typer.Option("--config", "-c", help="turnout.toml to use (default: ./turnout.toml if present)."),
]


def fail(exc: TurnoutError) -> typer.Exit:
    errors.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False, soft_wrap=True)
    return typer.Exit(code=2 if isinstance(exc, UserError) else 1)


def settings_from(config: Path | None, *, traced: bool = True) -> Settings:
    """Load and install settings; commands that run models also start tracing (trace files,
    and OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set)."""
    settings = load_settings(config)
    use_settings(settings)
    if traced:
        from turnout import telemetry

        telemetry.configure()
    return settings


