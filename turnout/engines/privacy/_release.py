"""What a tool result handed to an outside client may hold: the guard's rules, the other way.

`turnout mcp` returns tool results to a client that is usually a cloud coding assistant. The
client's locality is declared (`remote` by default). A remote client gets what a remote model
would be sent under the policy: under `no-code`, no source, diffs, test or tool output or
untagged text — each such part rewritten by `[policy] on_forbidden` (`outline`, `redact`,
`summarize` by a local model; `refuse` withholds it), never returned as it is; under
`local-only`, nothing. The decision and the bytes returned, by kind, are the call's egress
record, as for a model call.
"""

from __future__ import annotations

from turnout.config import Settings
from turnout.engines.privacy._egress import EgressReport
from turnout.engines.privacy._guard import FORBIDDEN, _counts, _parts, _rewritten
from turnout.engines.privacy._locality import Locality
from turnout.engines.tag import Tagged, as_tagged
from turnout.errors import EgressRefused


async def release(content: Tagged, settings: Settings, *, client: Locality, what: str) -> tuple[Tagged, EgressReport]:
    """`content` as it may be returned to a `client`, and the egress record of returning it.
    EgressRefused when the policy lets nothing reach a remote client (`local-only`)."""
    mode, strategy = settings.policy.for_role(None)
    message = [{"role": "tool", "content": content}]
    report = EgressReport(policy=mode, strategy=strategy, decision="local", parts=_counts(_parts(message)))
    if client == "local":
        return content, report
    report.remote_models = ["mcp client"]
    if mode == "local-only":
        report.decision = "refused"
        raise EgressRefused(
            f"egress refused: {what} would go to a remote MCP client, and privacy policy local-only lets nothing "
            "leave this machine; declare the client local (--client local) if it runs here",
            role=None, model="mcp client", policy=mode, part=None, report=report)
    # the guard's rewriting; `refuse` withholds the part (there is no call to refuse)
    (released,), withheld = await _rewritten(message, FORBIDDEN[mode], "redact" if strategy == "refuse" else strategy,
                                             mode, settings)
    report.decision = "rewritten" if withheld else "sent"
    report.withheld_bytes = withheld
    report.count_sent([released])
    return as_tagged(released["content"]), report
