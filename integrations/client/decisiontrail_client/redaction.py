"""Redaction before anything leaves the process: secrets and common personal data in every
string of a record's ``input``, ``output``, ``reasoning`` and ``metadata``.

Regular expressions, on purpose: a named-entity model would be slower than the calls it
audits and is not something an audit client should download. Card numbers are redacted
only when their digits pass the Luhn check, so order numbers and timestamps survive.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

REDACTED_FIELDS = ("input", "output", "reasoning", "metadata")

SECRET_PATTERNS: dict[str, str] = {
    "api_key": r"\b(?:sk|pk|rk)-(?:[A-Za-z0-9_-]{2,}-)*[A-Za-z0-9_-]{16,}\b"
    r"|\bAKIA[0-9A-Z]{16}\b|\bgh[pousr]_[A-Za-z0-9]{30,}\b|\bxox[abpr]-[A-Za-z0-9-]{10,}\b"
    r"|\bdtk_[A-Za-z0-9_-]{16,}\b|\bAIza[0-9A-Za-z_-]{35}\b",
    "bearer_token": r"(?i)\bbearer\s+[A-Za-z0-9._~+/-]{16,}=*",
    "private_key": r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----",
}
PERSONAL_PATTERNS: dict[str, str] = {
    "email": r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b",
    "card_number": r"\b(?:\d[ -]?){12,18}\d\b",
    "phone": r"(?<![\w+])\+?\d{1,3}[ .-]?\(?\d{2,4}\)?[ .-]?\d{3,4}[ .-]?\d{3,4}\b",
}


def _luhn(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


@dataclass(frozen=True)
class Redaction:
    """Which built-in patterns run (``secrets``, ``personal``), extra named patterns, and the
    replacement (``[REDACTED:<name>]``)."""

    secrets: bool = True
    personal: bool = True
    extra: dict[str, str] = field(default_factory=dict)

    def compiled(self) -> list[tuple[str, re.Pattern[str]]]:
        patterns = {**(SECRET_PATTERNS if self.secrets else {})}
        if self.personal:
            patterns.update(PERSONAL_PATTERNS)
        patterns.update(self.extra)
        return [(name, re.compile(pattern)) for name, pattern in patterns.items()]


class Redactor:
    """Applies a ``Redaction`` to records (on the sender's thread)."""

    def __init__(self, redaction: Redaction) -> None:
        self._patterns = redaction.compiled()

    def text(self, value: str) -> str:
        for name, pattern in self._patterns:
            if name == "card_number":
                value = pattern.sub(_card_replacement, value)
            else:
                value = pattern.sub(f"[REDACTED:{name}]", value)
        return value

    def value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {key: self.value(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.value(item) for item in value]
        return value

    def record(self, record: dict[str, Any], fields: Iterable[str] = REDACTED_FIELDS) -> None:
        for name in fields:
            if name in record:
                record[name] = self.value(record[name])


def _card_replacement(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return "[REDACTED:card_number]" if 13 <= len(digits) <= 19 and _luhn(digits) else match.group(0)


Hook = Callable[[dict[str, Any]], dict[str, Any] | None]
