"""What the egress guard decided for one call and what left the machine (on the Completion,
the call's span and the usage meters)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

from turnout.engines.tag import SOURCE_KINDS, tagged_messages
from turnout.telemetry import _conventions as sc

Decision = Literal["local", "sent", "rewritten", "refused"]


class EgressReport(BaseModel):
    """What the guard decided for one call, and what left the machine."""

    policy: str
    strategy: str
    decision: Decision
    remote_models: list[str] = Field(default_factory=list, description="Remote models the payload may reach.")
    dropped_fallbacks: list[str] = Field(default_factory=list)
    parts: dict[str, int] = Field(default_factory=dict, description="Parts of each kind in the payload.")
    withheld_bytes: dict[str, int] = Field(default_factory=dict, description="Bytes the strategy kept back.")
    sent_bytes: dict[str, int] = Field(default_factory=dict, description="Bytes sent to remote models, by kind.")
    refused_part: str | None = None

    @property
    def total_sent(self) -> int:
        return sum(self.sent_bytes.values())

    @property
    def source_bytes_sent(self) -> int:
        """Source text, diffs, test and tool output, and untagged text sent remotely."""
        return sum(v for k, v in self.sent_bytes.items() if k in SOURCE_KINDS)

    def count_sent(self, conversation: Sequence[Mapping[str, Any]], schema_bytes: int = 0) -> None:
        """Add one request's payload to what was sent remotely (`schema`: the JSON schema of
        the answer, which names fields and the candidates an enum lists)."""
        sent = Counter(self.sent_bytes)
        for _, tagged in tagged_messages(conversation):
            sent.update(tagged.bytes_by_kind())
        if schema_bytes:
            sent["schema"] += schema_bytes
        self.sent_bytes = dict(sent)

    def attributes(self) -> dict[str, Any]:
        attributes: dict[str, Any] = {
            sc.EGRESS_POLICY: self.policy,
            sc.EGRESS_DECISION: self.decision,
            sc.EGRESS_SENT_BYTES: self.total_sent,
            sc.EGRESS_SOURCE_BYTES: self.source_bytes_sent,
        }
        if self.decision in ("rewritten", "refused"):
            attributes[sc.EGRESS_STRATEGY] = self.strategy
        if self.remote_models:
            attributes[sc.EGRESS_REMOTE_MODELS] = list(self.remote_models)
        if self.dropped_fallbacks:
            attributes[sc.EGRESS_DROPPED_FALLBACKS] = list(self.dropped_fallbacks)
        if self.refused_part:
            attributes[sc.EGRESS_REFUSED_PART] = self.refused_part
        for prefix, values in (
            (sc.EGRESS_PARTS, self.parts),
            (sc.EGRESS_WITHHELD_BYTES, self.withheld_bytes),
            (sc.EGRESS_SENT_BYTES, self.sent_bytes),
        ):
            for kind, value in values.items():
                attributes[f"{prefix}.{kind}"] = value
        return attributes
