"""The router: one short, constrained call on the local model that picks who does a step.

The agent is chosen from the candidates it is given, so even a tiny model cannot invent
one; confidence below the graph's threshold sends the step to the remote tier. On an engine
that scores choices (llama.cpp) the call asks only for the agent and the tier, a short list
of answers decided in one pass by their probabilities (`turnout.engines.choices`): the
confidence is the agent's probability, the reason says so. Elsewhere the model writes the
whole `Route`, confidence and reason included.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, create_model

from turnout.agents._base import Agent
from turnout.agents.schemas import PlanStep, Route, Tier
from turnout.config import RoleName
from turnout.engines import tag
from turnout.engines.choices import scores_choices
from turnout.errors import UserError


class RouteChoice(BaseModel):
    """What a scored route is chosen among: an agent and a tier."""

    agent: str
    tier: Tier


@lru_cache(maxsize=256)
def route_choice_schema(candidates: tuple[str, ...]) -> type[RouteChoice]:
    choice: Any = Literal[tuple(candidates)]  # type: ignore[valid-type]
    return create_model("RouteChoice", __base__=RouteChoice, agent=(choice, ...))


@lru_cache(maxsize=256)
def route_schema(candidates: tuple[str, ...]) -> type[Route]:
    """`Route` whose `agent` may only be one of `candidates` (built once per candidate set:
    creating a pydantic model costs more than the rest of a scripted call)."""
    choice: Any = Literal[tuple(candidates)]  # type: ignore[valid-type]
    return create_model("Route", __base__=Route, agent=(choice, ...))


class Router(Agent[Route]):
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

    async def run(self, request: PlanStep | str, *, candidates: Sequence[str] | None = None) -> Route:
        choices = tuple(candidates or self.candidates)
        if not choices:
            raise UserError("Router.run needs at least one candidate agent")
        step = request if isinstance(request, PlanStep) else PlanStep(kind="answer", description=request)
        prompt = tag.compose(
            f"Step kind: {step.kind}\nStep: {{step}}\nAgents: {', '.join(choices)}",
            step=tag.summary(step.description) if isinstance(request, PlanStep) else tag.request(step.description),
        )
        if scores_choices(self.model, self.settings):
            scored = await self.ask(prompt, route_choice_schema(choices))
            assert isinstance(scored.output, RouteChoice)
            probabilities = json.loads(scored.engine_stats.get("choice_probabilities") or "{}")
            agent = scored.output.agent
            confidence = sum(p for text, p in probabilities.items() if json.loads(text).get("agent") == agent)
            return Route(
                agent=agent, tier=scored.output.tier, confidence=min(1.0, round(confidence, 4)),
                reason=f"scored {len(probabilities)} choices: p(agent)={confidence:.2f}"[:80],
            )
        result = await self.ask(prompt, route_schema(choices))
        route = result.output
        assert isinstance(route, Route)
        return Route.model_validate(route.model_dump())
