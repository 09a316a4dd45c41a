"""Recursive-descent parser for GDBQL.

Both spellings are accepted, with case-insensitive keywords::

    STREAM e FROM events [WHERE c] [GROUP BY x [HAVING c]] [ORDER BY x [ASC|DESC], …]
        [LIMIT n] [MAP x]
    FROM e IN events [WHERE c] … [TOP n] [PROJECT INTO x]

(the clauses of either form may be used with either header; TOP ≙ LIMIT, PROJECT INTO ≙ MAP;
one trailing ``;`` is allowed). Precedence, loosest first: ``OR``, ``AND``, ``NOT``, the
comparisons (``== = != <> < <= > >=``, ``[NOT] IN``, ``[NOT] BETWEEN … AND …``, ``UNDER``,
``DESCENDANTS``; they do not chain), ``+ -``, ``* / %``, unary ``- +``, then literals,
parentheses, ``[…]`` arrays, ``{…}`` objects, field paths and aggregate calls.

Every failure raises a ``GdbqlSyntaxError`` (with the offset, line, column and the list of
tokens that would have been accepted there) or a ``GdbqlSemanticError``; nesting deeper
than ``MAX_NESTING`` is a syntax error, so no input can exhaust the interpreter's stack.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from .ast import (
    AGGREGATE_FUNCTIONS,
    EVENT_FIELDS,
    Aggregate,
    ArithmeticOp,
    ArrayLit,
    Between,
    Binary,
    Compare,
    CompareOp,
    Descendants,
    Expr,
    Field,
    In,
    Literal,
    Logical,
    Not,
    ObjectLit,
    PathStep,
    Query,
    SignOp,
    Unary,
    Under,
)
from .errors import GdbqlSemanticError, GdbqlSyntaxError, describe_expected
from .lexer import Token, tokenize
from .validation import validate
from .values import INT_MAX

MAX_NESTING = 40
RESERVED_WORDS = frozenset(
    {
        *("STREAM", "FROM", "IN", "WHERE", "GROUP", "BY", "HAVING", "ORDER", "ASC", "DESC"),
        *("LIMIT", "TOP", "MAP", "PROJECT", "INTO", "AND", "OR", "NOT", "BETWEEN", "UNDER"),
        *("DESCENDANTS", "TRUE", "FALSE", "NULL"),
    }
)
CLAUSE_WORDS = ("WHERE", "GROUP", "ORDER", "LIMIT", "TOP", "MAP", "PROJECT")
_COMPARISONS: dict[str, CompareOp] = {"==": "==", "=": "==", "!=": "!=", "<>": "!="}
_COMPARISONS |= {"<": "<", "<=": "<=", ">": ">", ">=": ">="}
_ADDITIVE: dict[str, ArithmeticOp] = {"+": "+", "-": "-"}
_MULTIPLICATIVE: dict[str, ArithmeticOp] = {"*": "*", "/": "/", "%": "%"}
_SIGNS: dict[str, SignOp] = {"-": "-", "+": "+"}
_KEYWORD_LITERALS: dict[str, bool | None] = {"TRUE": True, "FALSE": False, "NULL": None}
END = "end of query"


def parse(query: str) -> Query:
    """Parse and check one GDBQL query."""
    parsed = _Parser(query).query()
    validate(parsed, query)
    return parsed


def _keyword(token: Token) -> str | None:
    """The upper-cased word, for ASCII words only (so 'lımıt' is not LIMIT)."""
    if token.kind == "word" and token.text.isascii():
        return token.text.upper()
    return None


class _Parser:
    def __init__(self, source: str) -> None:
        self._source = source
        self._tokens = tokenize(source)
        self._index = 0
        self._tried: list[str] = []  # what was looked for at the current token
        self._nesting = 0
        self._var = ""

    # -- token plumbing -------------------------------------------------------------------

    @property
    def _token(self) -> Token:
        return self._tokens[self._index]

    def _lookahead(self) -> Token:
        return self._tokens[min(self._index + 1, len(self._tokens) - 1)]

    def _advance(self) -> Token:
        token = self._token
        if token.kind != "end":
            self._index += 1
        self._tried = []
        return token

    def _is_keyword(self, word: str, *, record: bool = True) -> bool:
        if record:
            self._tried.append(f"'{word}'")
        return _keyword(self._token) == word

    def _is_symbol(self, symbol: str, *, record: bool = True) -> bool:
        if record:
            self._tried.append(f"'{symbol}'")
        return self._token.kind == "symbol" and self._token.text == symbol

    def _accept_keyword(self, word: str) -> Token | None:
        return self._advance() if self._is_keyword(word) else None

    def _accept_symbol(self, symbol: str) -> Token | None:
        return self._advance() if self._is_symbol(symbol) else None

    def _expect_keyword(self, word: str) -> Token:
        if not self._is_keyword(word):
            raise self._error([f"'{word}'"])
        return self._advance()

    def _expect_symbol(self, symbol: str) -> Token:
        if not self._is_symbol(symbol):
            raise self._error([f"'{symbol}'"])
        return self._advance()

    def _error(self, primary: list[str]) -> GdbqlSyntaxError:
        expected = list(dict.fromkeys(primary + self._tried))
        return GdbqlSyntaxError(
            f"expected {describe_expected(primary)}",
            source=self._source,
            position=self._token.position,
            expected=expected,
            got=self._token.describe(),
        )

    def _semantic_error(self, reason: str, position: int) -> GdbqlSemanticError:
        return GdbqlSemanticError(reason, source=self._source, position=position)

    @contextmanager
    def _deeper(self) -> Iterator[None]:
        self._nesting += 1
        try:
            if self._nesting > MAX_NESTING:
                raise GdbqlSyntaxError(
                    f"query nested too deeply (more than {MAX_NESTING} levels)",
                    source=self._source,
                    position=self._token.position,
                )
            yield
        finally:
            self._nesting -= 1

    # -- query and clauses ----------------------------------------------------------------

    def query(self) -> Query:
        self._var = self._header()
        where = self._expression() if self._accept_keyword("WHERE") else None
        group_by, having = self._group_clause()
        order_by = self._order_clause()
        limit = self._limit_clause()
        projection = self._map_clause()
        self._accept_symbol(";")
        self._expect_end()
        return Query(self._var, where, group_by, having, order_by, limit, projection)

    def _header(self) -> str:
        if self._accept_keyword("STREAM"):
            var = self._variable()
            self._expect_keyword("FROM")
        elif self._accept_keyword("FROM"):
            var = self._variable()
            self._expect_keyword("IN")
        else:
            raise self._error(["'STREAM'", "'FROM'"])
        if self._token.kind != "word" or self._token.text.lower() != "events":
            raise self._error(["'events'"])
        self._advance()
        return var

    def _variable(self) -> str:
        token = self._token
        if token.kind != "word" or _keyword(token) in RESERVED_WORDS:
            raise self._error(["an identifier"])
        self._advance()
        return token.text

    def _group_clause(self) -> tuple[Expr | None, Expr | None]:
        if not self._accept_keyword("GROUP"):
            if self._is_keyword("HAVING", record=False):
                raise self._semantic_error("HAVING requires GROUP BY", self._token.position)
            return None, None
        self._expect_keyword("BY")
        group_by = self._expression()
        having = self._expression() if self._accept_keyword("HAVING") else None
        return group_by, having

    def _order_clause(self) -> tuple[tuple[Expr, bool], ...]:
        if not self._accept_keyword("ORDER"):
            return ()
        self._expect_keyword("BY")
        items = [self._order_item()]
        while self._accept_symbol(","):
            items.append(self._order_item())
        return tuple(items)

    def _order_item(self) -> tuple[Expr, bool]:
        expr = self._expression()
        if self._accept_keyword("DESC"):
            return expr, True
        self._accept_keyword("ASC")
        return expr, False

    def _limit_clause(self) -> int | None:
        if not (self._accept_keyword("LIMIT") or self._accept_keyword("TOP")):
            return None
        position = self._token.position
        count = self._unary()
        if isinstance(count, Literal) and type(count.value) is int and count.value >= 0:
            return count.value
        raise self._semantic_error(
            f"LIMIT must be a non-negative integer up to {INT_MAX}", position
        )

    def _map_clause(self) -> Expr | None:
        if self._accept_keyword("MAP"):
            return self._expression()
        if self._accept_keyword("PROJECT"):
            self._expect_keyword("INTO")
            return self._expression()
        return None

    def _expect_end(self) -> None:
        if self._token.kind == "end":
            return
        clauses = [f"'{word}'" for word in CLAUSE_WORDS if f"'{word}'" in self._tried]
        raise self._error([*clauses, END])

    # -- expressions, loosest first -------------------------------------------------------

    def _expression(self) -> Expr:
        with self._deeper():
            return self._or()

    def _or(self) -> Expr:
        operands = [self._and()]
        position = self._token.position
        while self._accept_keyword("OR"):
            operands.append(self._and())
        return operands[0] if len(operands) == 1 else Logical("OR", tuple(operands), position)

    def _and(self) -> Expr:
        operands = [self._not()]
        position = self._token.position
        while self._accept_keyword("AND"):
            operands.append(self._not())
        return operands[0] if len(operands) == 1 else Logical("AND", tuple(operands), position)

    def _not(self) -> Expr:
        if not self._is_keyword("NOT", record=False):
            return self._comparison()
        token = self._advance()
        with self._deeper():
            return Not(self._not(), token.position)

    def _comparison(self) -> Expr:
        left = self._additive()
        token = self._token
        for symbol, op in _COMPARISONS.items():
            if self._accept_symbol(symbol):
                return Compare(op, left, self._additive(), token.position)
        negated = self._accept_not_before("IN", "BETWEEN")
        node = self._membership(left, token.position)
        if node is None:
            return left
        return Not(node, token.position) if negated else node

    def _accept_not_before(self, *words: str) -> bool:
        self._tried.extend(f"'NOT {word}'" for word in words)
        if _keyword(self._token) == "NOT" and _keyword(self._lookahead()) in words:
            self._index += 1  # keep the tried list: the next word is checked below
            return True
        return False

    def _membership(self, left: Expr, position: int) -> Expr | None:
        if self._accept_keyword("IN"):
            return In(left, self._in_options(), position)
        if self._accept_keyword("BETWEEN"):
            low = self._additive()
            self._expect_keyword("AND")
            return Between(left, low, self._additive(), position)
        if self._accept_keyword("UNDER"):
            return Under(left, self._additive(), position)
        if self._accept_keyword("DESCENDANTS"):
            return Descendants(left, self._additive(), position)
        return None

    def _in_options(self) -> Expr:
        if not self._is_symbol("(", record=False):
            return self._additive()
        token = self._advance()
        return ArrayLit(self._sequence(")"), token.position)

    def _additive(self) -> Expr:
        left = self._multiplicative()
        while op := self._accept_operator(_ADDITIVE):
            token = self._tokens[self._index - 1]
            left = Binary(op, left, self._multiplicative(), token.position)
        return left

    def _multiplicative(self) -> Expr:
        left = self._unary()
        while op := self._accept_operator(_MULTIPLICATIVE):
            token = self._tokens[self._index - 1]
            left = Binary(op, left, self._unary(), token.position)
        return left

    def _accept_operator(self, operators: dict[str, ArithmeticOp]) -> ArithmeticOp | None:
        for symbol, op in operators.items():
            if self._accept_symbol(symbol):
                return op
        return None

    def _unary(self) -> Expr:
        token = self._token
        sign = _SIGNS.get(token.text) if token.kind == "symbol" else None
        if sign is None:
            return self._primary()
        self._advance()
        with self._deeper():
            return Unary(sign, self._unary(), token.position)

    # -- primaries ------------------------------------------------------------------------

    def _primary(self) -> Expr:
        token = self._token
        if token.kind in ("string", "int", "float"):
            if isinstance(token.value, int) and token.value > INT_MAX:
                raise self._semantic_error(
                    f"integer literal above {INT_MAX} (64 bits); write it as a float, e.g. 1e30",
                    token.position,
                )
            self._advance()
            return Literal(token.value, token.position)
        if self._is_symbol("(", record=False):
            self._advance()
            inner = self._expression()
            self._expect_symbol(")")
            return inner
        if self._is_symbol("[", record=False):
            self._advance()
            return ArrayLit(self._sequence("]"), token.position)
        if self._is_symbol("{", record=False):
            self._advance()
            return self._object(token.position)
        if token.kind == "word":
            return self._word()
        raise self._error(["an expression"])

    def _sequence(self, closer: str) -> tuple[Expr, ...]:
        """Comma-separated expressions up to ``closer`` (consumed); a trailing comma is fine."""
        items: list[Expr] = []
        while not self._accept_symbol(closer):
            items.append(self._expression())
            if not self._accept_symbol(","):
                self._expect_symbol(closer)
                break
        return tuple(items)

    def _object(self, position: int) -> ObjectLit:
        entries: dict[str, Expr] = {}
        while not self._accept_symbol("}"):
            key_token = self._token
            if key_token.kind not in ("word", "string"):
                raise self._error(["a key"])
            self._advance()
            self._expect_symbol(":")
            key = str(key_token.value)
            if key in entries:
                raise self._semantic_error(f"duplicate key {key!r}", key_token.position)
            entries[key] = self._expression()
            if not self._accept_symbol(","):
                self._expect_symbol("}")
                break
        return ObjectLit(tuple(entries.items()), position)

    def _word(self) -> Expr:
        token = self._token
        keyword = _keyword(token)
        if keyword in _KEYWORD_LITERALS:
            self._advance()
            return Literal(_KEYWORD_LITERALS[keyword], token.position)
        if keyword in RESERVED_WORDS:
            raise self._error(["an expression"])
        if self._lookahead().text == "(" and self._lookahead().kind == "symbol":
            return self._aggregate()
        if token.text == self._var:
            return self._field()
        raise self._semantic_error(
            f"unknown name {token.text!r} (the range variable is {self._var!r})", token.position
        )

    def _aggregate(self) -> Aggregate:
        name = self._advance()
        func = AGGREGATE_FUNCTIONS.get(_keyword(name) or "")
        if func is None:
            raise self._semantic_error(f"unknown function {name.text!r}", name.position)
        self._expect_symbol("(")
        if func == "COUNT" and self._accept_symbol(")"):
            return Aggregate("COUNT", None, name.position)
        arg = self._expression()
        self._expect_symbol(")")
        return Aggregate(func, arg, name.position)

    def _field(self) -> Field:
        var = self._advance()
        path: list[PathStep] = []
        while True:
            if self._accept_symbol("."):
                path.append(self._field_name())
            elif self._accept_symbol("["):
                path.append(self._index_step())
                self._expect_symbol("]")
            else:
                break
        self._check_path(path, var.position)
        return Field(tuple(path), var.position)

    def _field_name(self) -> str:
        token = self._token
        if token.kind != "word":
            raise self._error(["a field name"])
        self._advance()
        return token.text

    def _index_step(self) -> PathStep:
        token = self._token
        if token.kind not in ("string", "int"):
            raise self._error(["a string", "an integer"])
        self._advance()
        return token.value if isinstance(token.value, str) else int(token.value)

    def _check_path(self, path: list[PathStep], position: int) -> None:
        if not path:
            return
        head = path[0]
        if head not in EVENT_FIELDS:
            known = ", ".join(EVENT_FIELDS)
            raise self._semantic_error(f"unknown field {head!r} (known: {known})", position)
        if len(path) > 1 and head != "data":
            raise self._semantic_error(f"field {head!r} has no sub-fields", position)
