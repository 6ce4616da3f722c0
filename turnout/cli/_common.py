"""What every `turnout` command shares: consoles, the --config option, error exits."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from turnout.config import Settings, load_settings, use_settings
from turnout.engines._meter import UsageTotals
from turnout.errors import ConfigError, TurnoutError, UserError

console = Console()
errors = Console(stderr=True)

ConfigOption = Annotated[
    Optional[Path],
    typer.Option("--config", "-c", help="turnout.toml to use (default: ./turnout.toml if present)."),
]
PolicyOption = Annotated[
    Optional[str],
    typer.Option(
        "--policy",
        help="Privacy policy for this run: open, no-code (remote models never see source, diffs or "
        "test output) or local-only (default: [policy] mode in config).",
    ),
]
CheckpointerOption = Annotated[
    Optional[str],
    typer.Option(
        "--checkpointer",
        help="Where checkpoints go: a SQLite file or a postgres://user:password@host/db URL "
        "(default: `checkpoints` in config, .turnout/checkpoints.sqlite).",
    ),
]
OfflineOption = Annotated[
    bool,
    typer.Option("--offline", help="Refuse every remote model call: policy local-only for every role."),
]


def fail(exc: TurnoutError) -> typer.Exit:
    errors.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True, highlight=False, soft_wrap=True)
    return typer.Exit(code=2 if isinstance(exc, UserError) else 1)


def settings_from(
    config: Path | None,
    *,
    traced: bool = True,
    policy: str | None = None,
    offline: bool = False,
) -> Settings:
    """Load and install settings; commands that run models also start tracing (trace files,
    and OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set).

    `--offline` beats `--policy`, which beats config, which beats the library's default; the
    policy typed here is a floor: config may make a role stricter, never looser."""
    settings = load_settings(config)
    if policy is not None:  # checked even where --offline overrides it: a typo is never silently ignored
        settings = settings.with_policy(policy, floor=True)
    if offline:
        settings = settings.with_policy("local-only", everywhere=True, floor=True)
    use_settings(settings)
    if traced:
        from turnout import telemetry

        telemetry.configure()
    return settings




def traces_dir(settings: Settings, directory: Path | None) -> Path:
    """`--dir`, else the configured trace directory; an error when trace files are off."""
    if directory is not None:
        return directory
    if settings.traces_path is None:
        raise ConfigError("trace files are turned off (traces_dir = 'off'); pass --dir to read old ones")
    return settings.traces_path


def egress_line(usage: UsageTotals | None, policy: str) -> str:
    """The end-of-run proof of what left the machine, from the run's usage totals."""
    if usage is None:
        return f"policy {policy} · `turnout trace summary` shows what was sent remotely"
    refused = f" · {usage.refused_calls} call(s) refused by the policy" if usage.refused_calls else ""
    if not usage.remote_calls:
        return f"policy {policy} · remote calls: 0 · nothing was sent off this machine{refused}"
    by_kind = ", ".join(f"{kind} {size:,}" for kind, size in sorted(usage.sent_bytes.items()))
    total = sum(usage.sent_bytes.values())
    return (
        f"policy {policy} · remote calls: {usage.remote_calls} · bytes sent remotely: {total:,} ({by_kind})"
        f" · source code sent remotely: {usage.source_bytes_sent:,} bytes{refused}"
    )
