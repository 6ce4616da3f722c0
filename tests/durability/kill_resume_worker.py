"""One process of the kill-and-resume test: `turnout run hybrid` with a scripted team.

    python -m tests.durability.kill_resume_worker start|resume CHECKPOINTER THREAD REPO JOURNAL

Every model call appends `<pid> <role> <what>` to JOURNAL before answering, so the test can
tell which process did which step. In `start`, the retriever never answers step 2: the
process hangs there, with steps 0 and 1 done, until the test kills it.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path
from typing import Any

from turnout.config import ROLE_NAMES

TASK = "Where is the tax for a region computed?"
HANG_ON_STEP = "look 2"


def main(phase: str, checkpointer: str, thread: str, repo: str, journal: Path) -> None:
    for role in ROLE_NAMES:
        os.environ[f"TURNOUT_ROLES__{role.upper()}"] = f"scripted/kr-{role}"

    from turnout.cli import main as turnout
    from turnout.engines import scripted

    def note(role: str, what: str) -> None:
        with journal.open("a", encoding="utf-8") as out:
            out.write(f"{os.getpid()} {role} {what}\n")

    def planner(messages: list[dict[str, Any]]) -> Any:
        if "Results:" in messages[-1]["content"]:
            note("planner", "decide")
            return {"action": "finish", "answer": "tax_for_region in shop/pricing.py", "steps": []}
        note("planner", "plan")
        steps = [{"kind": "retrieve", "description": f"look {i} for tax code", "depends_on": []} for i in range(3)]
        return {"steps": steps}

    def router(messages: list[dict[str, Any]]) -> Any:
        agent = re.search(r"Agents: ([a-z]+)", messages[0]["content"]).group(1)  # type: ignore[union-attr]
        note("router", re.search(r"look \d", messages[-1]["content"]).group(0))  # type: ignore[union-attr]
        return {"agent": agent, "tier": "local", "confidence": 0.9, "reason": "fits"}

    async def retriever(messages: list[dict[str, Any]]) -> Any:
        step = re.search(r"look \d", messages[-1]["content"]).group(0)  # type: ignore[union-attr]
        note("retriever", step)
        if phase == "start" and step == HANG_ON_STEP:
            await asyncio.sleep(3600)  # the test kills this process here
        return {"keywords": ["tax", "region"]}

    scripted.register("kr-planner", planner)
    scripted.register("kr-router", router)
    scripted.register("kr-retriever", retriever)
    common = ["--repo", repo, "--thread", thread, "--checkpointer", checkpointer]
    sys.argv = ["turnout", "run", "hybrid", *([TASK] if phase == "start" else ["--resume"]), *common]
    turnout()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], Path(sys.argv[5]))
