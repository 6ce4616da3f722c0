"""An answer checked against the schema it was asked for, and the re-ask when it fails."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from turnout.engines._recording import json_schema_of
from turnout.engines.schema_bounds import answer_problems
from turnout.engines.tag import instructions, summary

OutputT = TypeVar("OutputT", bound=BaseModel)


def raw_schema_of(call: dict[str, Any]) -> dict[str, Any] | None:
    """The raw JSON schema a call was given (`json_schema=`), if any."""
    response_format = call.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        schema = response_format.get("json_schema", {}).get("schema")
        return schema if isinstance(schema, dict) else None
    return None


def checked(schema: type[OutputT] | None, raw_schema: dict[str, Any] | None, text: str) -> tuple[OutputT | None, str | None]:
    """The validated output (pydantic `schema`), and why the text fails its schema (None
    when it passes). A raw schema is validated too: local engines decode under a grammar
    whose long length bounds `schema_bounds` dropped, and remote models may answer anything."""
    if schema is not None:
        try:
            return schema.model_validate_json(_strip_fences(text)), None
        except ValidationError as exc:
            return None, _validation_summary(exc)
    if raw_schema is not None:
        return None, answer_problems(raw_schema, _strip_fences(text))
    return None, None


def schema_title(schema: type[BaseModel] | None) -> str:
    return schema.__name__ if schema is not None else "the JSON schema"


def reask(
    messages: list[dict[str, Any]], raw: str, served: str, problems: str,
    schema: type[BaseModel] | None, raw_schema: dict[str, Any] | None,
) -> list[dict[str, Any]]:
    """The conversation asked again: the failed answer (tagged as the model's), the problems,
    and the schema."""
    wanted = json_schema_of(schema) if schema is not None else raw_schema or {}
    return [
        *messages,
        {"role": "assistant", "content": summary(raw, origin=served)},
        {
            "role": "user",
            "content": instructions(
                f"That answer does not validate against the required JSON schema: "
                f"{problems}. Reply with only a JSON object matching this "
                f"schema: {json.dumps(wanted)}"
            ),
        },
    ]


def _strip_fences(text: str) -> str:
    stripped = text.strip()
    if stripped.startswith("```") and stripped.endswith("```"):
        stripped = stripped.split("\n", 1)[1] if "\n" in stripped else ""
        stripped = stripped.rsplit("```", 1)[0]
    return stripped


def _validation_summary(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors()[:5])
