"""The router: one short, constrained call on the local model that picks who does a step.

The agent is chosen from the candidates it is given, so even a tiny model cannot invent
one; confidence below the graph's threshold sends the step to the remote tier. On an engine
that scores choices (llama.cpp) the call asks only for the agent and the tier, a short list
of answers decided in one pass by their probabilities (`turnout.engines.choices`): the
confidence is the agent's probability (the scorer's exact total, scored answers and the
branches it had no need to score), the reason says so. There the remote tier is offered only
where one is configured (`[hybrid] escalate_to`): a tier that cannot be taken is no choice,
and each branch scored costs an evaluation. Elsewhere the model writes the
whole `Route`, confidence and reason included.

The step's kind and the candidates are part of the system message, the step alone is the
user message: a route call's instructions are then the same for every step of a kind, and
llama.cpp restores their saved state instead of evaluating them (on the embedded model, 2
cores, the tokens evaluated per call fell from ~35 to ~23, p50 from 231 to 154 ms measured
side by side).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, create_model

from turnout.agents._base import RoleAgent
from turnout.agents.schemas import PlanStep, Route, Tier
from turnout.config import RoleName, get_settings
from turnout.engines import tag
from turnout.engines.choices import scores_choices
from turnout.errors import UserError


class RouteChoice(BaseModel):
    """What a scored route is chosen among: an agent and a tier."""

    agent: str
    tier: Tier


@lru_cache(maxsize=256)
def route_choice_schema(candidates: tuple[str, ...], tiers: tuple[Tier, ...] = ("local", "remote")) -> type[RouteChoice]:
    choice: Any = Literal[tuple(candidates)]  # type: ignore[valid-type]
    tier: Any = Literal[tuple(tiers)]  # type: ignore[valid-type]
    return create_model("RouteChoice", __base__=RouteChoice, agent=(choice, ...), tier=(tier, ...))


@lru_cache(maxsize=256)
def route_schema(candidates: tuple[str, ...]) -> type[Route]:
    """`Route` whose `agent` may only be one of `candidates` (built once per candidate set:
    creating a pydantic model costs more than the rest of a scripted call)."""
    choice: Any = Literal[tuple(candidates)]  # type: ignore[valid-type]
    return create_model("Route", __base__=Route, agent=(choice, ...))


class Router(RoleAgent[Route]):
    agent_name: ClassVar[str] = "router"
    role: ClassVar[RoleName] = "router"
    input_key: ClassVar[str] = "step"
    output_key: ClassVar[str] = "route"
    instructions: ClassVar[str] = (
        "You route one step of a plan to the agent that should do it. Choose the agent, the "
        "tier (local for routine work, remote only for hard reasoning), your confidence from "
        "0 to 1, and a one-line reason. Reply with JSON only."
    )

    def __init__(self, *, candidates: Sequence[str] = ("retriever", "coder", "verifier", "planner"), **kwargs: Any) -> None:
        super().__init__(max_tokens=kwargs.pop("max_tokens", 256), **kwargs)
        self.candidates = tuple(candidates)

    @classmethod
    def instructions_for(cls, kind: str, candidates: Sequence[str]) -> str:
        """The system message of a route call: the router's instructions, the step's kind and
        the candidate agents. The step itself is the user message, so what a call evaluates
        beyond a saved state of its instructions is the step (see the module docstring)."""
        return f"{cls.instructions}\nStep kind: {kind}\nAgents: {', '.join(candidates)}"

    async def run(self, request: PlanStep | str, *, candidates: Sequence[str] | None = None) -> Route:
        choices = tuple(candidates or self.candidates)
        if not choices:
            raise UserError("Router.run needs at least one candidate agent")
        step = request if isinstance(request, PlanStep) else PlanStep(kind="answer", description=request)
        prompt = tag.summary(step.description) if isinstance(request, PlanStep) else tag.request(step.description)
        instructions = self.instructions_for(step.kind, choices)
        if scores_choices(self.model, self.settings):
            settings = self.settings or get_settings()
            tiers: tuple[Tier, ...] = ("local", "remote") if settings.hybrid.escalate_to else ("local",)
            scored = await self.ask(prompt, route_choice_schema(choices, tiers), instructions=instructions)
            assert isinstance(scored.output, RouteChoice)
            stats = scored.engine_stats
            agent = scored.output.agent
            confidence, exact = _probability_of(agent, json.loads(stats.get("choice_probabilities") or "{}"),
                                                json.loads(stats.get("choices_left") or "[]"))
            return Route(
                agent=agent, tier=scored.output.tier, confidence=min(1.0, round(confidence, 4)),
                reason=f"scored {stats.get('choices_scored')} of {stats.get('choices')} choices: "
                f"p(agent){'=' if exact else '>='}{confidence:.2f}"[:80],
            )
        result = await self.ask(prompt, route_schema(choices), instructions=instructions)
        route = result.output
        assert isinstance(route, Route)
        return Route.model_validate(route.model_dump())


def _probability_of(agent: str, scored: dict[str, float], left: list[dict[str, Any]]) -> tuple[float, bool]:
    """The probability that the scored route's agent is `agent`: its scored answers, plus the
    branches left unscored whose answers all name it; exact unless a branch left mixes agents."""
    def agent_of(text: str) -> Any:
        return json.loads(text).get("agent")

    total = sum(p for text, p in scored.items() if agent_of(text) == agent)
    exact = True
    for branch in left:
        agents = {agent_of(text) for text in branch["answers"]}
        if agents == {agent}:
            total += branch["probability"]
        elif agent in agents:
            exact = False
    return total, exact
