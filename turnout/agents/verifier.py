"""The verifier: judges a result against its step from tool output and the result itself."""

from __future__ import annotations

from typing import ClassVar

from turnout.agents._base import RoleAgent, as_request
from turnout.agents.schemas import Verdict
from turnout.config import RoleName
from turnout.engines import tag
from turnout.engines.tag import Content


class Verifier(RoleAgent[Verdict]):
    agent_name: ClassVar[str] = "verifier"
    role: ClassVar[RoleName] = "verifier"
    input_key: ClassVar[str] = "claim"
    output_key: ClassVar[str] = "verdict"
    instructions: ClassVar[str] = (
        "You check whether a result does what its step asked, using the evidence given "
        "(tool output, test results, code). Reply passed=true only if it clearly does; give "
        "short reasons. Reply with JSON only."
    )

    async def run(self, request: Content, *, evidence: Content = "", model: str | None = None) -> Verdict:
        """Judge `request` (the step and its result) against `evidence` (tag it: tool output,
        test output, a diff; a plain string is untagged)."""
        prompt = tag.compose(
            "{request}\nEvidence:\n{evidence}",
            request=as_request(request),
            evidence=evidence or tag.instructions("(none)"),
        )
        result = await self.ask(prompt, Verdict, model=model)
        assert isinstance(result.output, Verdict)
        return result.output
