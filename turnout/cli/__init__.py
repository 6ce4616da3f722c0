"""The `turnout` command: a thin Typer + Rich layer over the Python API."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Optional

import typer
from pydantic import BaseModel
from rich.markup import escape
from rich.table import Table

from turnout._imports import import_object
from turnout.cli._common import ConfigOption, OfflineOption, PolicyOption, console, errors, fail, settings_from
from turnout.cli.mcp import mcp
from turnout.cli.refactor import refactor
from turnout.cli.replay import replay
from turnout.cli.run import run
from turnout.cli.serve import serve
from turnout.cli.trace import trace_app
from turnout.errors import SchemaImportError, TurnoutError

app = typer.Typer(
    help="Hybrid agent graphs: a planner that may use a cloud model, with local sub-agents.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _start(ctx: typer.Context) -> None:
    """Commands that call models are traced (see `settings_from`); spans are flushed on exit."""
    from turnout import telemetry

    ctx.call_on_close(telemetry.flush)

def import_schema(spec: str) -> type[BaseModel]:
    """`package.module:ClassName` → the pydantic model class it names."""
    try:
        schema = import_object(spec)
    except ValueError:
        raise SchemaImportError(f"schema {spec!r} must look like package.module:ClassName") from None
    except ImportError as exc:
        raise SchemaImportError(f"{exc} (for --schema)") from None
    if not (isinstance(schema, type) and issubclass(schema, BaseModel)):
        raise SchemaImportError(
            f"{spec!r} is not a pydantic model class; --schema needs a BaseModel subclass"
        )
    return schema


@app.command()
def engines(config: ConfigOption = None) -> None:
    """Show each role's model, where it runs, and whether it can run here."""
    from turnout.engines import engine_table

    try:
        settings = settings_from(config)
    except TurnoutError as exc:
        raise fail(exc) from None
    table = Table(title="turnout roles")
    for column in ("role", "model", "locality", "policy", "available"):
        table.add_column(column)
    for row in engine_table(settings):
        label = {"role": row.role, "endpoint": f"  ↳ endpoint {row.endpoint}", "fallback": "  ↳ fallback",
                 "mcp": f"mcp {row.role}"}[row.kind]
        available = "[green]yes[/]" if row.unavailable is None else f"[red]no[/]: {escape(row.unavailable)}"
        table.add_row(label, row.model, row.locality, row.policy or "", available)
    console.print(table)


@app.command()
def ask(
    prompt: Annotated[str, typer.Argument(help="What to ask.")],
    role: Annotated[str, typer.Option("--role", "-r", help="Role or litellm model string.")] = "planner",
    schema: Annotated[
        Optional[str], typer.Option("--schema", "-s", help="Output schema as module:Class.")
    ] = None,
    max_tokens: Annotated[Optional[int], typer.Option(help="Cap on generated tokens.")] = None,
    temperature: Annotated[Optional[float], typer.Option(help="Sampling temperature.")] = None,
    config: ConfigOption = None,
    policy: PolicyOption = None,
    offline: OfflineOption = False,
) -> None:
    """Run one model call and print the answer, tokens and tokens/s."""
    from turnout.engines import check_policy

    try:
        settings = settings_from(config, policy=policy, offline=offline)
        check_policy(settings, roles=[], models={"--role": role})
        output_schema = import_schema(schema) if schema else None
        result = asyncio.run(_ask(prompt, role, output_schema, max_tokens, temperature))
    except TurnoutError as exc:
        raise fail(exc) from None
    usage, timings = result.usage, result.timings
    rate = f"{timings.tokens_per_s:.1f} tokens/s" if timings.tokens_per_s else "tokens/s n/a"
    ttft = f", first token {timings.ttft_s:.2f}s" if timings.ttft_s is not None else ""
    errors.print(
        f"[dim]{result.model} ({result.locality}) · {usage.input_tokens} in / "
        f"{usage.output_tokens} out · {timings.total_s:.2f}s{ttft} · {rate}[/]",
        soft_wrap=True,
    )


async def _ask(
    prompt: str,
    role: str,
    schema: type[BaseModel] | None,
    max_tokens: int | None,
    temperature: float | None,
) -> Any:
    from turnout.engines import complete, stream, tag

    prompt = tag.request(prompt)  # type: ignore[assignment]  # the user typed it
    if schema is not None:
        with errors.status(f"asking {role}…"):
            result = await complete(
                role, prompt, schema=schema, max_tokens=max_tokens, temperature=temperature
            )
        assert result.output is not None
        console.print_json(result.output.model_dump_json())
        return result
    answer = stream(role, prompt, max_tokens=max_tokens, temperature=temperature)
    async for delta in answer:
        console.print(delta, end="", markup=False, highlight=False)
    console.print()
    return answer.result


app.command()(run)
app.command()(refactor)
app.command()(replay)
app.command()(serve)
app.command()(mcp)
app.add_typer(trace_app, name="trace")


def main() -> None:
    app()


if __name__ == "__main__":
    main()

__all__ = ["app", "import_schema", "main"]
