"""JSON schema `pattern`s as a decoding grammar may hold them (see `schema_bounds`).

llama-cpp-python's converter accepts anchored patterns without `(?…)` groups, and unrolls
each bounded repetition into nested optional groups; too many of them and llama.cpp refuses
the grammar. One pass over the pattern rewrites long upper bounds and prices the unrolling.
"""

from __future__ import annotations

from turnout.errors import SchemaRefused

MAX_REPEAT = 600
MAX_PATTERN_COST = 2_000

_SIMPLE: dict[str, tuple[int, int | None]] = {"*": (0, None), "+": (1, None), "?": (0, 1)}
_CLASS_ESCAPES = {
    "\\d": "[0-9]", "\\w": "[0-9A-Za-z_]", "\\s": "[ \\t\\n\\r]",
    "\\D": "[^0-9]", "\\W": "[^0-9A-Za-z_]", "\\S": "[^ \\t\\n\\r]",
}


def grammar_pattern(pattern: str, where: str = "the schema") -> str:
    """`pattern` as a grammar may hold it: anchored (JSON schema patterns match anywhere, so
    `[a-z]+` becomes `^.*([a-z]+).*$`), `{m,n}` with n past MAX_REPEAT becoming `{m,}`;
    anything a grammar cannot express, or that would unroll past MAX_PATTERN_COST, is refused."""
    starts = pattern.startswith("^")
    ends = pattern.endswith("$") and not pattern.endswith("\\$")
    if not (starts and ends):
        core = pattern[1 if starts else 0 : len(pattern) - 1 if ends else len(pattern)]
        pattern = ("^" if starts else "^.*") + f"({core})" + ("$" if ends else ".*$")
    return _PatternScanner(pattern, where).rewritten()


def pattern_max_chars(pattern: str) -> int | None:
    """The most characters a string matching the anchored `pattern` can hold (None: no limit)."""
    scanner = _PatternScanner(pattern, "the schema")
    scanner.rewritten()
    return None if scanner.max_chars == _UNBOUNDED else int(scanner.max_chars)


def pattern_is_ascii(pattern: str) -> bool:
    """True when every character a match can hold is ASCII: no `.`, no negated class or
    shorthand, no escape naming a code point, and the pattern itself is ASCII."""
    if not pattern.isascii():
        return False
    escaped = in_class = False
    for index, char in enumerate(pattern):
        if escaped:
            if char in "WSDpPux":
                return False
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]" or pattern[index - 1] == "["
        elif char == "[":
            if pattern[index + 1 : index + 2] == "^":
                return False
            in_class = True
        elif char == ".":
            return False
    return True


_UNBOUNDED = float("inf")


class _PatternScanner:
    """One pass over an ECMA-262 pattern: rewrites long upper bounds and prices the unrolling
    (an atom costs 1, a group the costliest of its alternatives, a quantifier multiplies).
    The same pass measures the longest match (`max_chars`, infinite past `*`, `+`, `{m,}`)."""

    def __init__(self, pattern: str, where: str) -> None:
        self.pattern = pattern
        self.where = where
        self.max_chars: float = 0

    def refuse(self, why: str) -> SchemaRefused:
        return SchemaRefused(f"{self.where} has pattern {_short(self.pattern)}: {why}")

    def rewritten(self) -> str:
        text = self.pattern
        out: list[str] = []
        # Per open group: the costs of its finished alternatives, and of the current one.
        alternatives: list[list[int]] = [[]]
        current = [0]
        last_atom = 0  # the cost of the atom a quantifier would apply to
        widths: list[list[float]] = [[]]  # the same, for the longest match
        width: list[float] = [0]
        last_width: float = 0
        i = 0
        while i < len(text):
            char = text[i]
            quantifier = self._quantifier(i)
            if quantifier is not None:
                low, high, end = quantifier
                if low > MAX_REPEAT:
                    raise self.refuse(f"it repeats at least {low:,} times; local decoding unrolls at most {MAX_REPEAT}")
                if high is not None and high > MAX_REPEAT:
                    high = None
                    out.append(f"{{{low},}}")
                else:
                    out.append(text[i:end])
                if text[end : end + 1] in ("?", "+"):  # lazy or possessive: the same strings
                    out.append(text[end])
                    end += 1
                current[-1] += last_atom * (max(low, high or 1, 1) - 1)
                width[-1] += _UNBOUNDED if high is None and last_width else last_width * ((high or 0) - 1)
                last_atom = 0
                last_width = 0
                i = end
            elif char == "(":
                if text[i + 1 : i + 2] == "?":
                    raise self.refuse("(?…) groups (lookaround, named, non-capturing) cannot be decoded by a grammar")
                alternatives.append([])
                current.append(0)
                widths.append([])
                width.append(0)
                out.append(char)
                last_atom = 0
                last_width = 0
                i += 1
            elif char == ")":
                if len(current) == 1:
                    raise self.refuse(f"unbalanced ')' at {i}")
                last_atom = max(*alternatives.pop(), current.pop(), 0)
                current[-1] += last_atom
                last_width = max(*widths.pop(), width.pop(), 0)
                width[-1] += last_width
                out.append(char)
                i += 1
            elif char in "^$" and 0 < i < len(text) - 1:
                raise self.refuse("anchors (^, $) inside a pattern cannot be decoded by a grammar")
            elif char == "|":
                alternatives[-1].append(current[-1])
                current[-1] = 0
                widths[-1].append(width[-1])
                width[-1] = 0
                out.append(char)
                last_atom = 0
                last_width = 0
                i += 1
            else:
                end = self._atom_end(i)
                out.append(self._spelled_out(text[i:end]))
                last_atom = 1
                current[-1] += 1
                anchor = text[i:end] in ("^", "$")
                last_width = 0 if anchor else 1
                width[-1] += last_width
                i = end
            if max(*alternatives[-1], current[-1], 0) > MAX_PATTERN_COST:
                raise self.refuse(f"it unrolls into more than {MAX_PATTERN_COST:,} grammar items")
        if len(current) != 1:
            raise self.refuse("a '(' is never closed")
        self.max_chars = max(*widths[0], width[0], 0)
        return "".join(out)

    def _spelled_out(self, atom: str) -> str:
        """`atom` with the class escapes (`\\d`, `\\w`, `\\s` and their negations) spelled as
        character classes: llama-cpp-python's converter copies them into the grammar as they
        are, where llama.cpp refuses them (`^\\d$` became the literal `"\\d"`). ASCII, as in a
        JSON schema's regular expressions; `\\s` as space, tab, newline and return."""
        if atom in _CLASS_ESCAPES:
            return _CLASS_ESCAPES[atom]
        if atom.startswith("[") and "\\" in atom:
            inner = atom[1:-1]
            for escape, spelled in _CLASS_ESCAPES.items():
                if escape in inner:
                    if spelled.startswith("[^"):
                        raise self.refuse(f"{escape} inside a character class cannot be decoded by a grammar; list the characters")
                    inner = inner.replace(escape, spelled[1:-1])
            return f"[{inner}]"
        return atom

    def _atom_end(self, start: int) -> int:
        """Where the atom at `start` ends: an escape, a character class or one character."""
        text = self.pattern
        if text[start] == "[":
            return self._class_end(start)
        if text[start] != "\\":
            return start + 1
        if start + 1 >= len(text):
            raise self.refuse("it ends in a lone backslash")
        if text[start + 1] in "123456789":
            raise self.refuse("back-references cannot be decoded by a grammar")
        end = start + 2
        if text[start + 1] in "pPux" and text[end : end + 1] == "{":
            close = text.find("}", end)
            if close < 0:
                raise self.refuse(f"the escape at {start} is never closed")
            end = close + 1
        return end

    def _class_end(self, start: int) -> int:
        text = self.pattern
        i = start + 1
        if text[i : i + 1] == "^":
            i += 1
        if text[i : i + 1] == "]":
            i += 1
        while i < len(text):
            if text[i] == "\\":
                i += 2
                continue
            if text[i] == "]":
                return i + 1
            i += 1
        raise self.refuse(f"the character class opened at {start} is never closed")

    def _quantifier(self, start: int) -> tuple[int, int | None, int] | None:
        """`*`, `+`, `?`, `{m}`, `{m,}` or `{m,n}` at `start` as (m, n or None for no upper
        bound, end); None where no quantifier starts (a `{` that is a literal)."""
        text = self.pattern
        if text[start] in _SIMPLE:
            return (*_SIMPLE[text[start]], start + 1)
        if text[start] != "{":
            return None
        close = text.find("}", start)
        if close < 0:
            return None
        body = text[start + 1 : close]
        low_text, comma, high_text = body.partition(",")
        if not low_text.isdigit() or (high_text and not high_text.isdigit()):
            return None
        low = int(low_text)
        high = int(high_text) if high_text else (None if comma else low)
        if high is not None and high < low:
            raise self.refuse(f"{{{body}}} has its bounds the wrong way round")
        return low, high, close + 1


def _short(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")
