"""The planner: breaks a task into typed steps, then finishes or replans from their results.

It is the one agent that may reasonably sit on a frontier cloud model; under a privacy
policy it sees the task, file paths and summaries written by local agents.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from turnout.agents._base import Agent
from turnout.agents.schemas import Answer, Decision, Plan, PlanStep
from turnout.config import RoleName


def describe_results(results: Sequence[str]) -> str:
    return "\n".join(f"- {r}" for r in results) or "(no results yet)"


class Planner(Agent[Plan]):
    agent_name: ClassVar[str] = "planner"
    role: ClassVar[RoleName] = "planner"
    input_key: ClassVar[str] = "task"
    output_key: ClassVar[str] = "plan"
    instructions: ClassVar[str] = (
        "You plan work for a team of agents on a software repository. Break the task into "
        "at most 4 short steps. Each step has a kind: retrieve (find code or facts in the "
        "repository), code (write or change code), verify (check results), answer (write the "
        "final answer). Reply with JSON only."
    )

    async def run(self, request: str, *, context: str = "") -> Plan:
        """Plan `request` (the task); `context` is what is known already (files, symbols)."""
        prompt = f"Task: {request}" + (f"\nKnown context:\n{context}" if context else "")
        result = await self.ask(prompt, Plan)
        assert isinstance(result.output, Plan)
        return result.output

    async def decide(self, task: str, plan: Sequence[PlanStep], results: Sequence[str]) -> Decision:
        """Finish with an answer, or replan, given what the steps produced."""
        steps = "\n".join(f"{i}. [{s.kind}] {s.description}" for i, s in enumerate(plan))
        prompt = (
            f"Task: {task}\nPlan:\n{steps}\nResults:\n{describe_results(results)}\n"
            "If the results answer the task, reply action=finish with the answer. "
            "Otherwise reply action=replan with new steps."
        )
        result = await self.ask(prompt, Decision)
        assert isinstance(result.output, Decision)
        return result.output

    async def answer(self, task: str, step: PlanStep, results: Sequence[str], *, model: str | None = None) -> Answer:
        """Carry out an `answer` step: write the answer from the results so far."""
        prompt = (
            f"Task: {task}\nStep: {step.description}\nResults so far:\n{describe_results(results)}\n"
            "Write the answer."
        )
        result = await self.ask(prompt, Answer, model=model)
        assert isinstance(result.output, Answer)
        return result.output
