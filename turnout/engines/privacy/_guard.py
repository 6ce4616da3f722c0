"""The egress guard: before a call is sent, may this payload go to the models it can reach?

Every model the call can reach (the role's model and its Router fallbacks) is local or
remote; the policy (`[policy]`, per role) says which tagged parts a remote model may see.
A forbidden payload is rewritten by the configured strategy or refused with EgressRefused,
never sent; a remote fallback that may not see it is dropped for this call. The report
goes on the call's span: policy, decision, what the payload held, what was sent remotely.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from turnout.config import OnForbidden, PolicyMode, Settings, get_settings
from turnout.engines.privacy._egress import EgressReport
from turnout.engines.privacy._locality import Locality
from turnout.engines.privacy._policy import deployments, own_locality, policy_for, served_locality
from turnout.engines.privacy._rewrite import rewrite
from turnout.engines._routing import fallback_group
from turnout.engines.tag import SOURCE_KINDS, Part, Tagged, tagged_messages
from turnout.errors import EgressRefused

FORBIDDEN: dict[PolicyMode, frozenset[str]] = {
    "open": frozenset(),
    "no-code": SOURCE_KINDS,
    "local-only": frozenset(),  # nothing goes to a remote model at all
}


@dataclass
class Cleared:
    """A call the guard let through: the messages to send and litellm parameters to add; the
    door reports back through it where the answer came from and what was sent."""

    messages: list[dict[str, Any]]
    report: EgressReport
    call: dict[str, Any] = field(default_factory=dict)
    primary_remote: bool = False
    schema_bytes: int = 0
    role: str | None = None
    settings: Settings | None = None

    def count_sent(self, conversation: Sequence[Mapping[str, Any]]) -> None:
        self.report.count_sent(conversation, self.schema_bytes)

    def answered(self, served: str, api_base: str | None, conversation: Sequence[Mapping[str, Any]]) -> Locality:
        """Where the model that answered (`served`, at `api_base` when the response says)
        runs; a conversation that reached a remote model is counted as sent."""
        locality = served_locality(served, self.role, api_base, self.settings or get_settings())
        if self.primary_remote or locality == "remote":
            self.count_sent(conversation)
        return locality


def _parts(messages: Sequence[Mapping[str, Any]]) -> list[Part]:
    return [part for _, tagged in tagged_messages(messages) for part in tagged.parts]


def _counts(parts: Sequence[Part]) -> dict[str, int]:
    return dict(Counter(p.kind for p in parts))


async def guard(
    role: str | None, model: str, api_base: str | None, settings: Settings, messages: Sequence[Mapping[str, Any]]
) -> Cleared:
    """Judge `messages` for the models this call can reach; raise EgressRefused or clear it."""
    mode, strategy = policy_for(role, settings)
    reachable = deployments(role, model, api_base, settings)
    own = [d for d in reachable if d.fallback_index is None]
    fallbacks = [d for d in reachable if d.fallback_index is not None]
    parts = _parts(messages)
    forbidden_kinds = FORBIDDEN[mode]
    forbidden = [p for p in parts if p.kind in forbidden_kinds]
    report = EgressReport(policy=mode, strategy=strategy, decision="local", parts=_counts(parts))
    conversation = [dict(m) for m in messages]

    remote_fallbacks = [d for d in fallbacks if d.locality == "remote"]
    if remote_fallbacks and (mode == "local-only" or forbidden):
        report.dropped_fallbacks = [d.model for d in remote_fallbacks]
        kept = [fallback_group(role, d.fallback_index) for d in fallbacks if d.locality == "local"]  # type: ignore[arg-type]
        call = {"fallbacks": [{role: kept}] if kept else []}
        remote_fallbacks = []
    else:
        call = {}

    if own_locality(own) == "local":
        report.remote_models = [d.model for d in remote_fallbacks]
        return Cleared(conversation, report, call, role=role, settings=settings)

    remote_own = list(dict.fromkeys(d.model for d in own if d.locality == "remote"))
    report.remote_models = [*remote_own, *(d.model for d in remote_fallbacks)]
    if mode == "local-only":
        report.decision = "refused"
        raise EgressRefused(
            f"egress refused: {_who(role, model)} is remote and privacy policy local-only allows no remote "
            f"call; nothing was sent. Point the role at a local model (e.g. llamacpp/smollm2) or run "
            f"without --offline / local-only.",
            role=role, model=model, policy=mode, part=None, report=report,
        )
    if not forbidden:
        report.decision = "sent"
        return Cleared(conversation, report, call, primary_remote=True, role=role, settings=settings)
    if strategy == "refuse":
        report.decision = "refused"
        report.refused_part = forbidden[0].describe()
        more = f" and {len(forbidden) - 1} more part(s)" if len(forbidden) > 1 else ""
        raise EgressRefused(
            f"egress refused: {_who(role, model)} is remote and privacy policy {mode} forbids sending "
            f"{forbidden[0].describe()}{more}; nothing was sent. Use a local model for this role, set "
            f"[policy] on_forbidden to outline, summarize or redact, or give the role "
            f"[policy.roles.{role or '<role>'}] mode = \"open\".",
            role=role, model=model, policy=mode, part=forbidden[0].describe(), report=report,
        )
    conversation, withheld = await _rewritten(conversation, forbidden_kinds, strategy, mode, settings)
    report.decision = "rewritten"
    report.withheld_bytes = withheld
    report.parts = _counts(_parts(conversation))
    return Cleared(conversation, report, call, primary_remote=True, role=role, settings=settings)


async def _rewritten(
    conversation: list[dict[str, Any]], forbidden: frozenset[str], strategy: OnForbidden, mode: str, settings: Settings
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    withheld: Counter[str] = Counter()
    out = []
    for message, tagged in tagged_messages(conversation):
        if not any(p.kind in forbidden for p in tagged.parts):
            out.append(dict(message))
            continue
        parts = []
        for part in tagged.parts:
            if part.kind in forbidden:
                withheld[part.kind] += part.size
                part = await rewrite(part, strategy, mode, settings)
            parts.append(part)
        out.append({**message, "content": Tagged(parts=tuple(parts))})
    return out, dict(withheld)


def _who(role: str | None, model: str) -> str:
    return f"role {role} → {model}" if role else model
