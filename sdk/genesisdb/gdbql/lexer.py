"""GDBQL tokenizer: words, strings, numbers and symbols, each with its source offset."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal as TypingLiteral
from typing import TypeAlias

from .errors import GdbqlSyntaxError

TokenKind: TypeAlias = TypingLiteral["word", "string", "int", "float", "symbol", "end"]
TokenValue: TypeAlias = str | int | float

# Longest first, so "<=" wins over "<".
SYMBOLS = (
    *("==", "!=", "<>", "<=", ">=", "=", "<", ">", "+", "-", "*", "/", "%"),
    *("(", ")", "[", "]", "{", "}", ",", ".", ":", ";"),
)
MAX_NUMBER_DIGITS = 400

_WHITESPACE = re.compile(r"\s+")
_WORD = re.compile(r"[^\W\d]\w*")
_NUMBER = re.compile(r"[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_HEX4 = re.compile(r"[0-9a-fA-F]{4}")
_SIMPLE_ESCAPES = {
    '"': '"',
    "'": "'",
    "\\": "\\",
    "/": "/",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
}


@dataclass(frozen=True, slots=True)
class Token:
    """One token; ``value`` is the decoded literal, the word, or the symbol."""

    kind: TokenKind
    text: str
    value: TokenValue
    position: int

    def describe(self) -> str:
        """How an error message names this token."""
        if self.kind == "end":
            return "end of query"
        text = self.text if len(self.text) <= 30 else self.text[:27] + "..."
        return text if self.kind == "string" else f"'{text}'"


def tokenize(source: str) -> list[Token]:
    """Split ``source`` into tokens, ending with an ``end`` token."""
    tokens: list[Token] = []
    position = 0
    while True:
        whitespace = _WHITESPACE.match(source, position)
        if whitespace:
            position = whitespace.end()
        if position >= len(source):
            tokens.append(Token("end", "", "", len(source)))
            return tokens
        token = _next_token(source, position)
        tokens.append(token)
        position += len(token.text)


def _next_token(source: str, position: int) -> Token:
    char = source[position]
    if char in "'\"":
        return _string(source, position)
    if char in "0123456789":
        return _number(source, position)
    word = _WORD.match(source, position)
    if word:
        return Token("word", word.group(), word.group(), position)
    for symbol in SYMBOLS:
        if source.startswith(symbol, position):
            return Token("symbol", symbol, symbol, position)
    raise GdbqlSyntaxError(f"unexpected character {char!r}", source=source, position=position)


def _number(source: str, position: int) -> Token:
    match = _NUMBER.match(source, position)
    assert match is not None  # called on a digit
    text = match.group()
    end = match.end()
    if end < len(source) and (source[end].isalnum() or source[end] == "_"):
        raise GdbqlSyntaxError(
            f"invalid number {source[position : end + 1]!r}", source=source, position=position
        )
    if len(text) > MAX_NUMBER_DIGITS:
        raise GdbqlSyntaxError("number too long", source=source, position=position)
    if match.group(1) is None and match.group(2) is None:
        return Token("int", text, int(text), position)
    value = float(text)
    if not math.isfinite(value):
        raise GdbqlSyntaxError("number out of range", source=source, position=position)
    return Token("float", text, value, position)


def _string(source: str, start: int) -> Token:
    quote = source[start]
    chars: list[str] = []
    position = start + 1
    while position < len(source):
        char = source[position]
        if char == quote and source.startswith(quote * 2, position):
            chars.append(quote)  # SQL style: '' inside '…' is one quote
            position += 2
        elif char == quote:
            text = source[start : position + 1]
            return Token("string", text, "".join(chars), start)
        elif char == "\\":
            decoded, position = _escape(source, position)
            chars.append(decoded)
        else:
            chars.append(char)
            position += 1
    raise GdbqlSyntaxError(
        "unterminated string",
        source=source,
        position=start,
        expected=[f"closing {quote}"],
        got="end of query",
    )


def _escape(source: str, position: int) -> tuple[str, int]:
    """Decode the escape sequence at ``position`` (a backslash); return it and the next offset."""
    code = source[position + 1 : position + 2]
    if code in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[code], position + 2
    if code == "u":
        return _unicode_escape(source, position)
    raise GdbqlSyntaxError(
        f"invalid escape sequence {source[position : position + 2]!r}",
        source=source,
        position=position,
    )


def _unicode_escape(source: str, position: int) -> tuple[str, int]:
    first = _hex4(source, position)
    if not 0xD800 <= first <= 0xDFFF:
        return chr(first), position + 6
    if first <= 0xDBFF and source.startswith("\\u", position + 6):
        second = _hex4(source, position + 6)
        if 0xDC00 <= second <= 0xDFFF:
            combined = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
            return chr(combined), position + 12
    raise GdbqlSyntaxError("unpaired surrogate in \\u escape", source=source, position=position)


def _hex4(source: str, position: int) -> int:
    digits = _HEX4.match(source, position + 2)
    if digits is None:
        raise GdbqlSyntaxError(
            "invalid \\u escape: expected 4 hex digits", source=source, position=position
        )
    return int(digits.group(), 16)
