"""The GDBQL error tree: every failure to parse or check a query is a ``GdbqlError``."""

from __future__ import annotations

from collections.abc import Sequence


def line_and_column(source: str, position: int) -> tuple[int, int]:
    """Return the 1-based line and column of a 0-based character offset in ``source``."""
    before = source[:position]
    line = before.count("\n") + 1
    column = position - (before.rfind("\n") + 1) + 1
    return line, column


def describe_expected(expected: Sequence[str]) -> str:
    """Join token descriptions as ``'a'``, ``'a' or 'b'``, ``'a', 'b' or 'c'``."""
    if len(expected) <= 1:
        return "".join(expected)
    return f"{', '.join(expected[:-1])} or {expected[-1]}"


class GdbqlError(Exception):
    """A query that cannot be run; ``position`` is the 0-based offset it refers to."""

    def __init__(self, reason: str, *, source: str, position: int, got: str | None = None) -> None:
        self.reason = reason
        self.position = position
        self.line, self.column = line_and_column(source, position)
        self.got = got
        where = f"at line {self.line}, column {self.column} (position {position})"
        suffix = f", got {got}" if got is not None else ""
        super().__init__(f"{reason} {where}{suffix}")


class GdbqlSyntaxError(GdbqlError):
    """The text is not a GDBQL query; ``expected`` lists what would have been accepted."""

    def __init__(
        self,
        reason: str,
        *,
        source: str,
        position: int,
        expected: Sequence[str] = (),
        got: str | None = None,
    ) -> None:
        self.expected = list(expected)
        super().__init__(reason, source=source, position=position, got=got)


class GdbqlSemanticError(GdbqlError):
    """The query parses but means nothing (an aggregate in WHERE, an unknown name, …)."""


class QueryBudgetExceeded(Exception):
    """A query ran past its budget (time or events examined), or its caller went away."""

    def __init__(self, reason: str, *, cancelled: bool = False) -> None:
        self.cancelled = cancelled
        super().__init__(reason)
