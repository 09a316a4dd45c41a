"""What both handlers share: the live runs, keyed by ``run_id``, and a decision per completed run.

Parentage comes only from LangChain's ``run_id``/``parent_run_id`` (never from context
variables, which leak between concurrent runs, thread pools and parallel tool calls). A
callback only stores references and timestamps and enqueues a builder; the record is built,
serialized and redacted on the sender's thread.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

from decisiontrail_client import DecisionTrail, record_key
from decisiontrail_langchain.serialize import document_json, message_json, to_json

log = logging.getLogger("decisiontrail_langchain")

Kind = Literal["llm_call", "tool_call", "retrieval", "chain", "agent_action", "agent_finish"]
ChainPolicy = Literal["none", "root", "nodes", "all"]
SESSION_KEYS = ("thread_id", "session_id", "conversation_id")
PRIVATE_METADATA = ("ls_", "langgraph_", "checkpoint_")  # LangChain's own bookkeeping


@dataclass(frozen=True)
class RunInfo:
    """What a personal-data policy sees of a run."""

    run_id: str
    name: str
    kind: str
    metadata: Mapping[str, Any]
    tags: Sequence[str]


def _subjects_from_metadata(run: RunInfo) -> list[str]:
    value = run.metadata.get("data_subjects", run.metadata.get("data_subject"))
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [str(item) for item in value]
    return []


@dataclass(frozen=True)
class PersonalData:
    """Which fields of a run's decision hold personal data, and who it is about.

    ``subjects`` names the run's data subjects (by default from the run's metadata,
    ``data_subjects`` or ``data_subject``); the service stores ``fields`` erasable under those
    subjects. With ``always=False`` the fields are marked only on runs that name a subject.
    """

    fields: tuple[str, ...] = ("input", "output")
    subjects: Callable[[RunInfo], Iterable[str]] = _subjects_from_metadata
    always: bool = False


@dataclass(slots=True)
class _Run:
    run_id: UUID
    kind: Kind
    name: str
    started: float
    parent_id: UUID | None
    root_id: UUID
    root_name: str
    recorded: bool
    recorded_parent: UUID | None
    tags: list[str]
    metadata: dict[str, Any]
    inputs: Any = None
    serialized: Mapping[str, Any] | None = None
    params: Mapping[str, Any] | None = None
    tool_call_id: str | None = None
    first_token: float | None = None
    stream_usage: dict[str, int] | None = None
    retries: int = 0
    outputs: Any = None
    error: BaseException | None = None
    ended: float = 0.0
    session: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _attempt(tags: list[str] | None) -> int:
    for tag in tags or ():
        if tag.startswith("retry:attempt:") and tag[14:].isdigit():
            return int(tag[14:])
    return 0


def _is_node(name: str, metadata: Mapping[str, Any]) -> bool:
    return metadata.get("langgraph_node") == name


class RunRecorder:
    def __init__(
        self,
        client: DecisionTrail,
        *,
        agent_name: str | None,
        chains: ChainPolicy,
        personal: PersonalData,
    ) -> None:
        self.client = client
        self.agent_name = agent_name or os.environ.get("DECISIONTRAIL_AGENT") or None
        self.chains = chains
        self.personal = personal
        self._runs: dict[UUID, _Run] = {}

    # --- run lifecycle (called on the application's thread or event loop) ---------------------

    def start(
        self,
        kind: Kind,
        run_id: UUID,
        parent_run_id: UUID | None,
        name: str,
        tags: list[str] | None,
        metadata: dict[str, Any] | None,
        **details: Any,
    ) -> None:
        parent = self._runs.get(parent_run_id) if parent_run_id is not None else None
        metadata = metadata or {}
        if parent is not None:
            root_id, root_name, session = parent.root_id, parent.root_name, parent.session
            recorded_parent = parent.run_id if parent.recorded else parent.recorded_parent
        else:  # a root run, or one whose parent another handler started
            root_id, root_name, session = parent_run_id or run_id, name, None
            recorded_parent = parent_run_id
        for key in SESSION_KEYS:
            if key in metadata:
                session = str(metadata[key])
                break
        attempt = _attempt(tags)
        if attempt > 1 and parent is not None:  # RunnableRetry tags each attempt's run
            parent.retries = max(parent.retries, attempt - 1)
        recorded = kind != "chain" or self._records_chain(name, metadata, parent is None)
        self._runs[run_id] = _Run(
            run_id, kind, name, time.time(), parent_run_id, root_id, root_name, recorded,
            recorded_parent, list(tags or ()), metadata, session=session, **details,
        )  # fmt: skip

    def _records_chain(self, name: str, metadata: Mapping[str, Any], is_root: bool) -> bool:
        if self.chains == "all":
            return True
        if self.chains == "none":
            return False
        return is_root or (self.chains == "nodes" and _is_node(name, metadata))

    def token(self, run_id: UUID, chunk: Any) -> None:
        """A streamed token: the first one's time, and usage that arrives only with chunks.
        Tokens themselves are not kept: the call's end carries the aggregated message."""
        run = self._runs.get(run_id)
        if run is None:
            return
        if run.first_token is None:
            run.first_token = time.time()
        message = getattr(chunk, "message", None)
        usage = getattr(message, "usage_metadata", None)
        if usage:
            total = run.stream_usage or {"input_tokens": 0, "output_tokens": 0}
            total["input_tokens"] += int(usage.get("input_tokens") or 0)
            total["output_tokens"] += int(usage.get("output_tokens") or 0)
            run.stream_usage = total

    def retry(self, run_id: UUID) -> None:
        run = self._runs.get(run_id)
        if run is not None:
            run.retries += 1

    def end(self, run_id: UUID, outputs: Any = None, error: BaseException | None = None) -> bool:
        """Enqueue the run's decision. True when a root run ended and the client is
        synchronous (serverless): the caller then flushes before the run returns."""
        run = self._runs.pop(run_id, None)
        if run is None:
            return False
        if run.recorded:
            run.ended, run.outputs, run.error = time.time(), outputs, error
            key = record_key("langchain", str(run_id), run.kind)
            self.client.enqueue(key, lambda: self._build(run))
        return run.parent_id is None and self.client.synchronous

    def agent_step(self, kind: Kind, run_id: UUID, step: Any) -> None:
        """An agent's action or finish (``AgentExecutor``): a decision of its own, its log as
        the reasoning, under the chain run that took it."""
        run = self._runs.get(run_id)
        if run is None:
            return
        run.extra["steps"] = count = run.extra.get("steps", 0) + 1
        when = time.time()
        key = record_key("langchain", str(run_id), kind, str(count))
        self.client.enqueue(key, lambda: self._build_step(kind, run, step, when, count))

    # --- records (built on the sender's thread) ---------------------------------------------

    def _envelope(self, run: _Run, kind: str, action: str) -> dict[str, Any]:
        record: dict[str, Any] = {
            "agent": (self.agent_name or run.root_name or "langchain")[:200],
            "action": action[:500] or kind,
            "kind": kind,
            "run_id": str(run.run_id),
            "started_at": _time(run.started),
        }
        if run.recorded_parent is not None:
            record["parent_run_id"] = str(run.recorded_parent)
        if run.session:
            record["session_id"] = run.session[:200]
        if run.tags:
            record["tags"] = [tag[:200] for tag in dict.fromkeys(run.tags) if tag][:100]
        metadata = {
            key: to_json(value) for key, value in run.metadata.items()
            if not key.startswith(PRIVATE_METADATA)
        }  # fmt: skip
        metadata["langchain.run_name"] = run.name
        metadata["langchain.root_run_id"] = str(run.root_id)
        if run.parent_id is not None:
            metadata["langchain.parent_run_id"] = str(run.parent_id)
        if run.retries:
            metadata["langchain.retries"] = run.retries
        record["metadata"] = metadata
        info = RunInfo(str(run.run_id), run.name, kind, run.metadata, run.tags)
        subjects = [str(s)[:200] for s in self.personal.subjects(info)][:100]
        if subjects:
            record["data_subjects"] = subjects
        if self.personal.fields and (subjects or self.personal.always):
            record["personal"] = list(self.personal.fields)
        return record

    def _build(self, run: _Run) -> dict[str, Any]:
        record = self._envelope(run, run.kind, run.name)
        record["ended_at"] = _time(max(run.ended, run.started))
        metadata = record["metadata"]
        builder = {
            "llm_call": self._llm, "tool_call": self._tool, "retrieval": self._retrieval,
            "chain": self._chain,
        }[run.kind]  # fmt: skip
        builder(run, record, metadata)
        if run.error is not None:
            error = {"type": type(run.error).__name__, "message": str(run.error)[:2000]}
            metadata["error"] = error
            metadata["status"] = "error"
            record["output"] = {"error": error}
        return record

    def _llm(self, run: _Run, record: dict[str, Any], metadata: dict[str, Any]) -> None:
        params = {k: to_json(v) for k, v in (run.params or {}).items() if not k.startswith("_")}
        meta = run.metadata
        provider = meta.get("ls_provider") or params.get("_type") or None
        name = (
            meta.get("ls_model_name") or params.get("model") or params.get("model_name")
            or params.get("model_id") or run.name
        )  # fmt: skip
        model: dict[str, Any] = {"name": str(name)[:200], "parameters": params}
        if provider:
            model["provider"] = str(provider)[:200]
        if isinstance(run.inputs, list) and run.inputs and isinstance(run.inputs[0], list):
            conversations = [[message_json(m) for m in prompt] for prompt in run.inputs]
            record["input"] = {
                "messages": conversations[0] if len(conversations) == 1 else conversations
            }
            metadata["gen_ai.operation.name"] = "chat"
        else:
            record["input"] = {"prompts": to_json(run.inputs)}
            metadata["gen_ai.operation.name"] = "text_completion"
        if run.first_token is not None:
            metadata["time_to_first_token_ms"] = round((run.first_token - run.started) * 1000, 3)
        result = run.outputs
        usage: dict[str, int] = {}
        finish: list[str] = []
        outputs: list[Any] = []
        for generations in getattr(result, "generations", None) or []:
            for generation in generations:
                message = getattr(generation, "message", None)
                info = getattr(generation, "generation_info", None) or {}
                if message is not None:
                    outputs.append(message_json(message))
                    info = {**getattr(message, "response_metadata", {}), **info}
                    for key, value in (getattr(message, "usage_metadata", None) or {}).items():
                        if key in ("input_tokens", "output_tokens") and value is not None:
                            usage[key] = usage.get(key, 0) + int(value)
                    if info.get("model_name") and "version" not in model:
                        model["version"] = str(info["model_name"])[:200]
                else:
                    outputs.append({"role": "assistant", "content": to_json(generation.text)})
                reason = info.get("finish_reason") or info.get("stop_reason")
                if reason:
                    finish.append(str(reason))
        llm_output = getattr(result, "llm_output", None) or {}
        token_usage = llm_output.get("token_usage") or llm_output.get("usage") or {}
        if not usage and token_usage:
            usage = {
                "input_tokens": int(token_usage.get("prompt_tokens") or 0),
                "output_tokens": int(token_usage.get("completion_tokens") or 0),
            }
        if not usage and run.stream_usage:
            usage = dict(run.stream_usage)
        if usage:
            record["usage"] = usage
        if llm_output.get("model_name") and "version" not in model:
            model["version"] = str(llm_output["model_name"])[:200]
        record["model"] = model
        if result is not None:
            record["output"] = {"messages": outputs}
        if finish:
            metadata["gen_ai.response.finish_reasons"] = finish
        requested = [call for out in outputs for call in out.get("tool_calls", [])]
        if requested:
            metadata["gen_ai.tool_calls"] = requested

    def _tool(self, run: _Run, record: dict[str, Any], metadata: dict[str, Any]) -> None:
        metadata["gen_ai.operation.name"] = "execute_tool"
        metadata["gen_ai.tool.name"] = run.name
        description = (run.serialized or {}).get("description")
        if description:
            metadata["gen_ai.tool.description"] = to_json(description)
        if run.tool_call_id:
            metadata["gen_ai.tool.call.id"] = run.tool_call_id
        record["input"] = {"arguments": to_json(run.inputs)}
        if run.error is None:
            output = run.outputs
            content = getattr(output, "content", output)
            record["output"] = {"result": to_json(content)}
            status = getattr(output, "status", None)
            if status and status != "success":
                metadata["status"] = status

    def _retrieval(self, run: _Run, record: dict[str, Any], metadata: dict[str, Any]) -> None:
        metadata["gen_ai.operation.name"] = "retrieval"
        record["input"] = {"query": to_json(run.inputs)}
        if run.error is None:
            documents = run.outputs or []
            record["output"] = {"documents": [document_json(d) for d in documents]}

    def _chain(self, run: _Run, record: dict[str, Any], metadata: dict[str, Any]) -> None:
        if _is_node(run.name, run.metadata):
            metadata["langgraph.node"] = run.name
        if run.parent_id is None:
            metadata["gen_ai.operation.name"] = "invoke_agent"
        record["input"] = to_json(run.inputs)
        if run.error is None:
            record["output"] = to_json(run.outputs)

    def _build_step(
        self, kind: Kind, run: _Run, step: Any, when: float, count: int
    ) -> dict[str, Any]:
        if kind == "agent_action":
            tool = str(getattr(step, "tool", "action"))
            record = self._envelope(run, kind, tool)
            record["input"] = {
                "tool": tool,
                "arguments": to_json(getattr(step, "tool_input", None)),
            }
        else:
            record = self._envelope(run, kind, "finish")
            record["output"] = to_json(getattr(step, "return_values", None))
        record["run_id"] = f"{run.run_id}:{kind}:{count}"
        record["parent_run_id"] = str(run.run_id)
        log_text = getattr(step, "log", None)
        if log_text:
            record["reasoning"] = str(log_text)[:1_000_000]
        record["started_at"] = record["ended_at"] = _time(when)
        return record


def _time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")
