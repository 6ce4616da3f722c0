"""What agents produce: pydantic models, so every output a program acts on is validated.

Strings carry length limits: local engines decode under these schemas' grammars, and a
bound keeps a small model from rambling until it runs out of tokens.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

StepKind = Literal["retrieve", "code", "answer", "verify"]
Tier = Literal["local", "remote"]
STEP_KINDS: tuple[StepKind, ...] = ("retrieve", "code", "answer", "verify")
ShortText = Annotated[str, Field(max_length=120)]
Keyword = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_ .]{0,39}$")]


StepIndex = Annotated[int, Field(ge=0, le=3)]


class PlanStep(BaseModel):
    kind: StepKind
    description: str = Field(min_length=1, max_length=160)
    depends_on: list[StepIndex] = Field(default_factory=list, max_length=3, description="Indices of earlier steps.")


class Plan(BaseModel):
    steps: list[PlanStep] = Field(min_length=1, max_length=4)


class Decision(BaseModel):
    """The planner's verdict on a round of results: finish with an answer, or a new plan."""

    action: Literal["finish", "replan"]
    cites: list[str] = Field(default_factory=list, max_length=3, description="Ids of the evidence the answer rests on.")
    answer: str = Field(max_length=300, description="One sentence about the cited evidence.")
    steps: list[PlanStep] = Field(default_factory=list, max_length=4)


class Answer(BaseModel):
    text: str = Field(max_length=600)


class Route(BaseModel):
    agent: str
    tier: Tier
    confidence: float = Field(ge=0, le=1)
    reason: str = Field(max_length=80)


class SearchTerms(BaseModel):
    keywords: list[Keyword] = Field(min_length=1, max_length=6)


class Snippet(BaseModel):
    path: str
    start_line: int
    end_line: int
    score: float
    symbol: str | None = None
    text: str


class Evidence(BaseModel):
    query: str
    keywords: list[str] = Field(default_factory=list)
    snippets: list[Snippet] = Field(default_factory=list)


class FileEdit(BaseModel):
    """A whole-definition replacement: small models write these far more reliably than diffs."""

    path: str
    symbol: str | None = Field(None, max_length=80)
    code: str = Field(max_length=4000)


class CodeResult(BaseModel):
    edits: list[FileEdit] = Field(default_factory=list, max_length=2)
    explanation: str = Field(max_length=300)


class Verdict(BaseModel):
    passed: bool
    reasons: list[ShortText] = Field(default_factory=list, max_length=3)
