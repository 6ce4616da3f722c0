"""The shape every turnout agent shares: a name, a role, instructions, an output schema.

An agent calls its model only through `turnout.engines.complete()`, so config decides where
it runs. Prompts are built from tagged parts (`turnout.engines.tag`), so the egress guard
knows what each holds: a plain string given as a request is the caller's request. It is usable from Python (`await Router().run(...)`) and as a plain LangGraph node
(`builder.add_node("route", Router())`), reading `input_key` from the state and writing its
output to `output_key`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel

from turnout.config import RoleName, Settings
from turnout.engines import Completion, complete, tag
from turnout.engines.scripted import Script
from turnout.engines.tag import Content, Tagged

OutputT = TypeVar("OutputT", bound=BaseModel)


class RoleAgent(ABC, Generic[OutputT]):
    """Base of turnout's built-in agents, one per role, each with a typed output. Subclasses set
    the class attributes and implement `run`. (Your own agents: `turnout.agents.Agent`.)"""

    agent_name: ClassVar[str]
    role: ClassVar[RoleName]
    instructions: ClassVar[str]
    input_key: ClassVar[str]
    output_key: ClassVar[str]

    def __init__(
        self,
        *,
        model: str | Script | None = None,
        settings: Settings | None = None,
        temperature: float = 0.0,
        max_tokens: int | None = 512,
    ) -> None:
        """`model`: a role or litellm model string to use instead of the agent's role, or a
        `Script` (a test double passed in: `Coder(model=Script.auto())`)."""
        self.script = model if isinstance(model, Script) else None  # held: a script lives while its agent does
        self.model = model.model if isinstance(model, Script) else model or self.role
        self.settings = settings
        self.temperature = temperature
        self.max_tokens = max_tokens

    def messages(self, request: Content, *, instructions: str | None = None) -> list[dict[str, Any]]:
        return [
            {"role": "system", "content": tag.instructions(instructions or self.instructions)},
            {"role": "user", "content": as_request(request)},
        ]

    async def ask(
        self, request: Content, schema: type[OutputT] | type[BaseModel], *, model: str | None = None,
        instructions: str | None = None,
    ) -> Completion[Any]:
        """One schema-constrained call of this agent's model (or `model`, e.g. for escalation),
        with the agent's instructions or `instructions`."""
        return await complete(
            model or self.model,
            self.messages(request, instructions=instructions),
            schema=schema,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            settings=self.settings,
        )

    @abstractmethod
    async def run(self, request: Any, **kwargs: Any) -> OutputT:
        """The agent's typed entry point."""

    async def __call__(self, state: Mapping[str, Any]) -> dict[str, Any]:
        """LangGraph node: `state[input_key]` in, `{output_key: output}` out."""
        return {self.output_key: await self.run(state[self.input_key])}


def as_request(value: Content) -> Tagged:
    """Agent input as tagged content: a plain string is the caller's request."""
    return tag.as_tagged(tag.request(value) if isinstance(value, str) else value)
