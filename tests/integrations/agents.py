"""Real LangChain / LangGraph agents on a scripted fake chat model, for the capture tests.

The model answers from the conversation it is shown (not from a shared script), so it gives
the same answers however runs interleave: in parallel, in threads, nested, async.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from langchain.agents import create_agent
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import tool
from langgraph.graph.state import CompiledStateGraph


class ModelDown(RuntimeError):
    """The fake provider's outage."""


class ScriptedChatModel(BaseChatModel):
    """Asks for tools on a fresh question, answers once the tools answered. ``fail_on`` in the
    question makes the call fail; ``parallel`` asks for both tools in one message."""

    model: str = "scripted-1"

    @property
    def _llm_type(self) -> str:
        return "scripted"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.model, "temperature": 0.0}

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
        return self

    def _reply(self, messages: list[BaseMessage]) -> AIMessage:
        question = next(str(m.content) for m in messages if m.type == "human")
        if "fail_on" in question:
            raise ModelDown("the provider is down")
        usage = {"input_tokens": 11 * len(messages), "output_tokens": 7, "total_tokens": 0}
        usage["total_tokens"] = usage["input_tokens"] + 7
        city = (re.findall(r"in (\w+)", question) or ["Paris"])[-1]
        if isinstance(messages[-1], ToolMessage):
            answers = "; ".join(str(m.content) for m in messages if isinstance(m, ToolMessage))
            return AIMessage(content=f"Here you go: {answers}", usage_metadata=usage,  # type: ignore[arg-type]
                             response_metadata={"finish_reason": "stop"})  # fmt: skip
        calls = [{"name": "get_weather", "args": {"city": city}, "id": f"call_w_{city}"}]
        if "specialist" in question:
            calls = [{"name": "ask_specialist", "args": {"question": f"weather in {city}"},
                      "id": f"call_s_{city}"}]  # fmt: skip
        elif "parallel" in question:
            calls.append({"name": "get_time", "args": {"city": city}, "id": f"call_t_{city}"})
        return AIMessage(content="", tool_calls=calls, usage_metadata=usage,  # type: ignore[arg-type]
                         response_metadata={"finish_reason": "tool_calls"})  # fmt: skip

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._reply(messages))])

    def _chunks(self, messages: list[BaseMessage]) -> Iterator[ChatGenerationChunk]:
        """As a streaming provider sends it: text tokens, tool-call chunks, and the usage only
        on the last chunk."""
        reply = self._reply(messages)
        for token in re.split(r"(\s)", str(reply.content)):
            if token:
                yield ChatGenerationChunk(message=AIMessageChunk(content=token))
        for index, call in enumerate(reply.tool_calls):
            yield ChatGenerationChunk(message=AIMessageChunk(content="", tool_call_chunks=[{
                "name": call["name"], "args": json.dumps(call["args"]),
                "id": call["id"], "index": index}]))  # fmt: skip
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                usage_metadata=reply.usage_metadata,
                response_metadata=reply.response_metadata,
                chunk_position="last",
            ),
        )

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for chunk in self._chunks(messages):
            if run_manager:
                run_manager.on_llm_new_token(str(chunk.message.content), chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for chunk in self._chunks(messages):
            if run_manager:
                await run_manager.on_llm_new_token(str(chunk.message.content), chunk=chunk)
            yield chunk


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    if city == "Atlantis":
        raise ValueError("no weather station in Atlantis")
    return f"sunny in {city}"


@tool
def get_time(city: str) -> str:
    """The local time in a city."""
    return f"10:00 in {city}"


def weather_agent(name: str) -> CompiledStateGraph[Any, Any, Any, Any]:
    return create_agent(ScriptedChatModel(), [get_weather, get_time], name=name)


def outer_agent(name: str) -> CompiledStateGraph[Any, Any, Any, Any]:
    """An agent whose tool asks another agent: nested runs."""
    inner = weather_agent(f"{name}-specialist")

    @tool
    def ask_specialist(question: str, config: RunnableConfig) -> str:
        """Ask the weather specialist."""
        result = inner.invoke({"messages": [("user", question)]}, config)
        return str(result["messages"][-1].content)

    return create_agent(ScriptedChatModel(), [ask_specialist], name=name)
