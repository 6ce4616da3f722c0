"""edit: a change no codemod makes, written by the coder model as whole-definition
replacements. It has no deterministic executor and no postcondition of its own: the
repository's tests (and a review that can only lower the verdict) are what check it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal

from pydantic import Field

from turnout.tools._codemod_targets import SourceTree, find
from turnout.tools.operations._base import DottedName, NotFound, Operation


class Edit(Operation):
    op: Literal["edit"] = "edit"
    needs_model: ClassVar[bool] = True
    symbol: DottedName | None = Field(None, description="The function or class the change is about.")
    instruction: str = Field("", max_length=400, description="What to change; the request when empty.")

    def describe(self) -> str:
        return "model-written edit" + (f" of {self.symbol}" if self.symbol else "") + (
            f": {self.instruction}" if self.instruction else "")

    def names(self) -> set[str]:
        return {self.symbol, self.symbol.rsplit(".", 1)[-1]} if self.symbol else set()

    def checked(self, tree: SourceTree) -> Edit:
        if self.symbol and not find(tree, self.symbol, "auto", None):
            raise NotFound(f"no definition of {self.symbol!r} in this repository")
        return self


def coder_task(request: str, operations: Sequence[Operation]) -> str:
    """What the coder is asked to write: the plan's edit instructions (a plan file's request is
    only its name), else the request itself."""
    said = [f"In {op.symbol}: {op.instruction}" if op.symbol else op.instruction
            for op in operations if isinstance(op, Edit) and op.instruction]
    return "\n".join(said) or request
