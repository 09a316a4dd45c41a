"""``DecisionTrailCallbackHandler`` (sync) and ``AsyncDecisionTrailCallbackHandler`` (async).

Both only record what a callback hands them and enqueue; neither does I/O in a callback. The
sync handler runs inline (``run_inline``): in an async run LangChain calls it on the event
loop instead of hopping to a thread pool, which keeps events in order and costs microseconds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from langchain_core.agents import AgentAction, AgentFinish
from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler
from langchain_core.documents import Document
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk, GenerationChunk, LLMResult

from decisiontrail_client import DecisionTrail
from decisiontrail_langchain.recorder import ChainPolicy, PersonalData, RunRecorder

log = logging.getLogger("decisiontrail_langchain")


def _name(serialized: dict[str, Any] | None, kwargs: dict[str, Any], default: str) -> str:
    if kwargs.get("name"):
        return str(kwargs["name"])
    if serialized:
        if serialized.get("name"):
            return str(serialized["name"])
        identifier = serialized.get("id")
        if isinstance(identifier, list) and identifier:
            return str(identifier[-1])
    return default


class _Configured:
    """Arguments shared by both handlers; each falls back to the environment."""

    recorder: RunRecorder

    def _configure(
        self,
        client: DecisionTrail | None,
        url: str | None,
        api_key: str | None,
        agent_name: str | None,
        chains: ChainPolicy,
        personal: PersonalData | None,
        client_options: dict[str, Any],
    ) -> None:
        client = client or DecisionTrail(url, api_key, **client_options)
        self.recorder = RunRecorder(
            client, agent_name=agent_name, chains=chains, personal=personal or PersonalData()
        )

    @property
    def client(self) -> DecisionTrail:
        return self.recorder.client

    def flush(self, timeout: float | None = None) -> Any:
        """Deliver everything recorded so far (see ``DecisionTrail.flush``)."""
        return self.recorder.client.flush(timeout)


class DecisionTrailCallbackHandler(_Configured, BaseCallbackHandler):
    """Records one decision per completed LangChain run (sync and async runs alike).

    ``DecisionTrailCallbackHandler()`` reads ``DECISIONTRAIL_URL``, ``DECISIONTRAIL_API_KEY``
    and ``DECISIONTRAIL_AGENT`` (the agent name; default: the root run's name). ``chains``
    chooses which chain runs become decisions: ``"root"`` (the default: the whole agent run),
    ``"nodes"`` (also LangGraph nodes), ``"all"`` or ``"none"``.
    """

    run_inline = True
    raise_error = False

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        agent_name: str | None = None,
        chains: ChainPolicy = "root",
        personal: PersonalData | None = None,
        client: DecisionTrail | None = None,
        **client_options: Any,
    ) -> None:
        super().__init__()
        self._configure(client, url, api_key, agent_name, chains, personal, client_options)

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.recorder.start(
            "llm_call", run_id, parent_run_id, _name(serialized, kwargs, "chat_model"), tags,
            metadata, inputs=[list(m) for m in messages], serialized=serialized,
            params=kwargs.get("invocation_params"),
        )  # fmt: skip

    def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.recorder.start(
            "llm_call", run_id, parent_run_id, _name(serialized, kwargs, "llm"), tags, metadata,
            inputs=list(prompts), serialized=serialized, params=kwargs.get("invocation_params"),
        )  # fmt: skip

    def on_llm_new_token(
        self,
        token: str | list[str | dict[str, Any]],
        *,
        chunk: GenerationChunk | ChatGenerationChunk | None = None,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        self.recorder.token(run_id, chunk)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        if self.recorder.end(run_id, response):
            self._root_ended()

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        if self.recorder.end(run_id, kwargs.get("response"), error):
            self._root_ended()

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: dict[str, Any] | Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.recorder.start(
            "chain", run_id, parent_run_id, _name(serialized, kwargs, "chain"), tags, metadata,
            inputs=inputs,
        )  # fmt: skip

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        if self.recorder.end(run_id, outputs):
            self._root_ended()

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        if self.recorder.end(run_id, None, error):
            self._root_ended()

    def on_tool_start(
        self,
        serialized: dict[str, Any],
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.recorder.start(
            "tool_call", run_id, parent_run_id, _name(serialized, kwargs, "tool"), tags,
            metadata, inputs=inputs if inputs is not None else input_str, serialized=serialized,
            tool_call_id=kwargs.get("tool_call_id"),
        )  # fmt: skip

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        if self.recorder.end(run_id, output):
            self._root_ended()

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        if self.recorder.end(run_id, None, error):
            self._root_ended()

    def on_retriever_start(
        self,
        serialized: dict[str, Any],
        query: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.recorder.start(
            "retrieval", run_id, parent_run_id, _name(serialized, kwargs, "retriever"), tags,
            metadata, inputs=query, serialized=serialized,
        )  # fmt: skip

    def on_retriever_end(
        self, documents: Sequence[Document], *, run_id: UUID, **kwargs: Any
    ) -> None:
        if self.recorder.end(run_id, list(documents)):
            self._root_ended()

    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        if self.recorder.end(run_id, None, error):
            self._root_ended()

    def _root_ended(self) -> None:
        self.recorder.client.flush(timeout=30)  # serverless: delivered before the run returns

    def on_agent_action(self, action: AgentAction, *, run_id: UUID, **kwargs: Any) -> None:
        self.recorder.agent_step("agent_action", run_id, action)

    def on_agent_finish(self, finish: AgentFinish, *, run_id: UUID, **kwargs: Any) -> None:
        self.recorder.agent_step("agent_finish", run_id, finish)

    def on_retry(self, retry_state: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.recorder.retry(run_id)


class AsyncDecisionTrailCallbackHandler(_Configured, AsyncCallbackHandler):
    """The same handler for async runs, with ``async`` callbacks that never block the loop:
    each only records and enqueues (flushing and hooks run on the sender's thread)."""

    raise_error = False

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        agent_name: str | None = None,
        chains: ChainPolicy = "root",
        personal: PersonalData | None = None,
        client: DecisionTrail | None = None,
        **client_options: Any,
    ) -> None:
        super().__init__()
        self._configure(client, url, api_key, agent_name, chains, personal, client_options)
        self._sync = _Inline(client=self.recorder.client)
        self._sync.recorder = self.recorder  # one set of live runs for both faces

    async def _ended(self) -> None:
        """After an end callback: in synchronous mode, a root run's decisions are delivered
        before the run returns, from a worker thread (never blocking the loop)."""
        if self._sync.root_ended:
            self._sync.root_ended = False
            await asyncio.to_thread(self.recorder.client.flush, 30)

    async def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:
        self._sync.on_chat_model_start(*args, **kwargs)

    async def on_llm_start(self, *args: Any, **kwargs: Any) -> None:
        self._sync.on_llm_start(*args, **kwargs)

    async def on_llm_new_token(
        self,
        token: str | list[str | dict[str, Any]],
        *,
        chunk: GenerationChunk | ChatGenerationChunk | None = None,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        self._sync.recorder.token(run_id, chunk)

    async def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        self._sync.on_llm_end(response, **kwargs)
        await self._ended()

    async def on_llm_error(self, error: BaseException, **kwargs: Any) -> None:
        self._sync.on_llm_error(error, **kwargs)
        await self._ended()

    async def on_chain_start(self, *args: Any, **kwargs: Any) -> None:
        self._sync.on_chain_start(*args, **kwargs)

    async def on_chain_end(self, outputs: Any, **kwargs: Any) -> None:
        self._sync.on_chain_end(outputs, **kwargs)
        await self._ended()

    async def on_chain_error(self, error: BaseException, **kwargs: Any) -> None:
        self._sync.on_chain_error(error, **kwargs)
        await self._ended()

    async def on_tool_start(self, *args: Any, **kwargs: Any) -> None:
        self._sync.on_tool_start(*args, **kwargs)

    async def on_tool_end(self, output: Any, **kwargs: Any) -> None:
        self._sync.on_tool_end(output, **kwargs)
        await self._ended()

    async def on_tool_error(self, error: BaseException, **kwargs: Any) -> None:
        self._sync.on_tool_error(error, **kwargs)
        await self._ended()

    async def on_retriever_start(self, *args: Any, **kwargs: Any) -> None:
        self._sync.on_retriever_start(*args, **kwargs)

    async def on_retriever_end(self, documents: Sequence[Document], **kwargs: Any) -> None:
        self._sync.on_retriever_end(documents, **kwargs)
        await self._ended()

    async def on_retriever_error(self, error: BaseException, **kwargs: Any) -> None:
        self._sync.on_retriever_error(error, **kwargs)
        await self._ended()

    async def on_agent_action(self, action: AgentAction, **kwargs: Any) -> None:
        self._sync.on_agent_action(action, **kwargs)

    async def on_agent_finish(self, finish: AgentFinish, **kwargs: Any) -> None:
        self._sync.on_agent_finish(finish, **kwargs)

    async def on_retry(self, retry_state: Any, **kwargs: Any) -> None:
        self._sync.on_retry(retry_state, **kwargs)

    async def aflush(self, timeout: float | None = None) -> Any:
        return await asyncio.to_thread(self.recorder.client.flush, timeout)


class _Inline(DecisionTrailCallbackHandler):
    """The async handler's synchronous core: a root run's end is noted, not flushed here."""

    root_ended = False

    def _root_ended(self) -> None:
        self.root_ended = True
