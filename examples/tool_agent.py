"""A repository Q&A agent with turnout's tools, on the local model — then the same with
LangChain's `create_agent` (a LangGraph graph; `pip install "turnout[langchain]"`) on
`ChatTurnout`.

    python examples/tool_agent.py "Where is the tax for a region computed?"
    python examples/tool_agent.py --langgraph "Where is the tax for a region computed?"

Both run on the embedded SmolLM2-135M by default (the `explorer` role is not configured, so it
calls the default model; give it another with `[roles] explorer = "provider/name"`). A model
this small picks tools poorly, but it cannot write a malformed call: every call it makes
names a real tool with arguments valid for it, and a loop stops at max_turns.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from pydantic import BaseModel, Field

from turnout import telemetry
from turnout.agents import Agent
from turnout.agents.repository_tools import RepositoryTools
from turnout.errors import BudgetExceeded

SAMPLE_REPO = Path(__file__).resolve().parent / "sample_repo"
INSTRUCTIONS = (
    "You answer questions about a Python repository. Look the code up with the tools "
    "(find_symbol for a name, search_code for words), then answer with the file and the function."
)


class Location(BaseModel):
    path: str = Field(description="The file that holds the answer.")
    symbol: str = Field(description="The function or class.")


async def with_turnout_agent(question: str, repo: Path) -> None:
    agent = Agent("explorer", instructions=INSTRUCTIONS, tools=RepositoryTools(repo).reading(),
                  output_type=Location, max_turns=4, max_tokens=200)
    try:
        result = await agent.run(question)
    except BudgetExceeded as exc:
        print(f"stopped: {exc}")
        return
    print(f"{result.output}  ({result.turns} turns, {result.tool_calls} tool calls, {result.total_tokens} tokens)")


async def with_langgraph_prebuilt(question: str, repo: Path) -> None:
    from langchain_core.messages import HumanMessage
    from langgraph.errors import GraphRecursionError

    try:
        from langchain.agents import create_agent
    except ImportError:
        raise SystemExit('--langgraph needs LangChain\'s create_agent: pip install "turnout[langchain]"') from None

    from turnout.integrations.langchain import ChatTurnout, langchain_tool

    tools = [langchain_tool(t) for t in RepositoryTools(repo).reading()]
    agent = create_agent(ChatTurnout("explorer", max_tokens=200), tools, system_prompt=INSTRUCTIONS)
    try:
        async for update in agent.astream({"messages": [HumanMessage(question)]}, {"recursion_limit": 8},
                                          stream_mode="updates"):
            for node_update in update.values():
                for message in (node_update or {}).get("messages", []):
                    calls = getattr(message, "tool_calls", None)
                    print(f"{message.type}: {calls or str(message.content)[:200]}")
    except GraphRecursionError:
        print("stopped: no answer within 8 graph steps (recursion_limit)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("question", nargs="?", default="Where is the tax for a region computed?")
    parser.add_argument("--repo", type=Path, default=SAMPLE_REPO)
    parser.add_argument("--langgraph", action="store_true", help="use LangChain's create_agent on ChatTurnout")
    args = parser.parse_args()
    telemetry.configure()
    run = with_langgraph_prebuilt if args.langgraph else with_turnout_agent
    asyncio.run(run(args.question, args.repo))
    telemetry.flush()


if __name__ == "__main__":
    main()
