"""The decision envelope at the HTTP edge (pydantic v2).

Field names follow DESIGN.md; where the OpenTelemetry GenAI semantic conventions name the same
thing, that name is accepted as an alias (``gen_ai.provider.name``, ``gen_ai.request.model``,
``gen_ai.usage.input_tokens`` …), so an OTel span's attributes map onto a decision unchanged.
"""

from __future__ import annotations

import math
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
Text = Annotated[str, Field(max_length=1_000_000)]
Identifier = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]

# The top-level fields that may be declared personal (and dotted paths below them).
PERSONAL_ROOTS = frozenset({"input", "output", "reasoning", "metadata", "oversight", "tags"})


MAX_DEPTH = 64  # nesting of a decision's values; the stores wrap it a few levels deeper


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone UTF-16 surrogate
        return False
    return True


def not_plain_json(value: Any) -> str | None:
    """Why ``value`` (a parsed request body) is not plain JSON the trail can keep exactly, or
    None. JSON parsers accept NaN, Infinity, lone surrogates and any depth; RFC 8785 (and so
    every hash) accepts none of them, and silently storing something else would falsify the
    record. Iterative, so depth cannot overflow the walk itself. Never quotes the value."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"the decision is nested deeper than {MAX_DEPTH} levels"
        if isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str) and not _is_unicode(key):
                    return "an object key holds a lone UTF-16 surrogate (not Unicode)"
                stack.append((child, depth + 1))
        elif isinstance(item, list | tuple):
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, float) and not math.isfinite(item):
            return "a number is NaN or infinite, which JSON cannot represent"
        elif isinstance(item, str) and not _is_unicode(item):
            return "a string holds a lone UTF-16 surrogate (not Unicode)"
    return None


class DecisionKind(StrEnum):
    LLM_CALL = "llm_call"
    TOOL_CALL = "tool_call"
    AGENT_ACTION = "agent_action"
    AGENT_FINISH = "agent_finish"
    RETRIEVAL = "retrieval"
    CHAIN = "chain"
    HUMAN_REVIEW = "human_review"
    CUSTOM = "custom"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class ModelInfo(_Strict):
    provider: Name | None = Field(
        None, validation_alias=AliasChoices("provider", "gen_ai.provider.name", "gen_ai.system")
    )
    name: Name = Field(validation_alias=AliasChoices("name", "gen_ai.request.model"))
    version: Name | None = Field(
        None, validation_alias=AliasChoices("version", "gen_ai.response.model")
    )
    parameters: dict[str, Any] = Field(default_factory=dict)


class Usage(_Strict):
    input_tokens: int | None = Field(
        None, ge=0, validation_alias=AliasChoices("input_tokens", "gen_ai.usage.input_tokens")
    )
    output_tokens: int | None = Field(
        None, ge=0, validation_alias=AliasChoices("output_tokens", "gen_ai.usage.output_tokens")
    )
    cost: float | None = Field(None, ge=0)


class Oversight(_Strict):
    reviewer: Identifier | None = None
    verdict: Annotated[str, Field(max_length=200)] | None = None
    overridden: bool = False


class DecisionCreate(_Strict):
    """A decision as a client sends it. Only ``agent`` and ``action`` are required."""

    agent: Name
    action: Annotated[str, Field(min_length=1, max_length=500)]
    kind: DecisionKind = DecisionKind.CUSTOM
    model: ModelInfo | None = None
    input: Any = None
    output: Any = None
    reasoning: Text | None = None
    confidence: float | None = Field(None, ge=0.0, le=1.0)
    data_subjects: list[Identifier] = Field(default_factory=list, max_length=100)
    session_id: Identifier | None = None
    run_id: Identifier | None = None
    parent_run_id: Identifier | None = None
    trace_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")] | None = None
    span_id: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")] | None = None
    usage: Usage | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    tags: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=100
    )
    metadata: dict[str, Any] = Field(default_factory=dict)
    oversight: Oversight | None = None
    personal: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=100
    )

    @model_validator(mode="before")
    @classmethod
    def _plain_json(cls, value: Any) -> Any:
        problem = not_plain_json(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("started_at", "ended_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("timestamps need a time zone (for example a trailing Z)")
        return value

    @field_validator("personal")
    @classmethod
    def _personal_paths(cls, paths: list[str]) -> list[str]:
        for path in paths:
            root = path.split(".", 1)[0]
            if root not in PERSONAL_ROOTS or "" in path.split("."):
                raise ValueError(
                    f"personal field {path!r} must be one of {sorted(PERSONAL_ROOTS)} "
                    "or a dotted path below one"
                )
        return sorted(set(paths))

    @model_validator(mode="after")
    def _ordered_times(self) -> DecisionCreate:
        if self.started_at and self.ended_at and self.ended_at < self.started_at:
            raise ValueError("ended_at is before started_at")
        return self
