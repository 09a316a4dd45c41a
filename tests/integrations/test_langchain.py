"""The LangChain / LangGraph handlers on real agent runs, read back from a real service."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.runnables import RunnableLambda

from decisiontrail_client import DecisionTrail
from decisiontrail_langchain import (
    AsyncDecisionTrailCallbackHandler,
    DecisionTrailCallbackHandler,
    PersonalData,
)
from tests.integrations.agents import ModelDown, ScriptedChatModel, outer_agent, weather_agent
from tests.integrations.conftest import Trail


@pytest.fixture
def client(trail: Trail, tmp_path: Path) -> Iterator[DecisionTrail]:
    with DecisionTrail(trail.url, trail.key, spool_dir=tmp_path / "spool") as started:
        yield started


def delivered(client: DecisionTrail, trail: Trail, agent: str) -> list[dict[str, Any]]:
    assert client.flush(timeout=60).complete
    return [record["decision"] for record in trail.decisions(agent)]


def by_kind(decisions: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in decisions if d.get("kind", "custom") == kind]


def test_agent_with_parallel_tool_calls(trail: Trail, client: DecisionTrail) -> None:
    handler = DecisionTrailCallbackHandler(client=client)
    agent = weather_agent("weather-sync")
    result = agent.invoke(
        {"messages": [("user", "parallel weather and time in Paris")]},
        {"callbacks": [handler], "configurable": {"thread_id": "thread-7"},
         "metadata": {"user_id": "u-1"}, "tags": ["prod"]},
    )  # fmt: skip
    assert "sunny in Paris" in result["messages"][-1].content
    decisions = delivered(client, trail, "weather-sync")
    (root,) = by_kind(decisions, "chain")
    assert "parent_run_id" not in root and root["action"] == "weather-sync"
    llm_calls, tools = by_kind(decisions, "llm_call"), by_kind(decisions, "tool_call")
    assert len(llm_calls) == 2 and len(tools) == 2 and len(decisions) == 5
    for decision in llm_calls + tools:
        assert decision["parent_run_id"] == root["run_id"]
        assert decision["metadata"]["langchain.root_run_id"] == root["run_id"]
        assert decision["session_id"] == "thread-7"
        assert decision["metadata"]["user_id"] == "u-1"
        assert "prod" in decision["tags"]
    first = next(d for d in llm_calls if d["output"]["messages"][0].get("tool_calls"))
    assert first["model"]["name"] == "scripted-1" and first["model"]["parameters"]
    assert first["input"]["messages"][0] == {
        "role": "user",
        "content": "parallel weather and time in Paris",
    }
    assert {c["name"] for c in first["metadata"]["gen_ai.tool_calls"]} == {"get_weather",
                                                                          "get_time"}  # fmt: skip
    assert first["metadata"]["gen_ai.response.finish_reasons"] == ["tool_calls"]
    assert first["usage"] == {"input_tokens": 11, "output_tokens": 7}
    by_call = {t["metadata"]["gen_ai.tool.call.id"]: t for t in tools}
    assert by_call["call_w_Paris"]["action"] == "get_weather"
    assert by_call["call_w_Paris"]["input"] == {"arguments": {"city": "Paris"}}
    assert by_call["call_w_Paris"]["output"] == {"result": "sunny in Paris"}
    assert by_call["call_t_Paris"]["output"] == {"result": "10:00 in Paris"}
    for decision in decisions:
        assert decision["started_at"] <= decision["ended_at"]


def test_streaming_aggregates_tokens_and_keeps_usage(trail: Trail, client: DecisionTrail) -> None:
    handler = DecisionTrailCallbackHandler(client=client, agent_name="weather-stream")
    chunks = list(weather_agent("streamed").stream(
        {"messages": [("user", "weather in Oslo")]}, {"callbacks": [handler]},
        stream_mode="messages",
    ))  # fmt: skip
    assert len(chunks) > 3  # tokens did stream
    decisions = delivered(client, trail, "weather-stream")
    llm_calls = by_kind(decisions, "llm_call")
    assert len(llm_calls) == 2  # one per call, never one per token
    final = next(d for d in llm_calls if not d["output"]["messages"][0].get("tool_calls"))
    assert final["output"]["messages"][0]["content"] == "Here you go: sunny in Oslo"
    assert final["usage"]["output_tokens"] == 7
    assert final["metadata"]["time_to_first_token_ms"] >= 0


async def test_async_handler_concurrent_runs_keep_their_parents(
    trail: Trail, client: DecisionTrail
) -> None:
    handler = AsyncDecisionTrailCallbackHandler(client=client, agent_name="weather-async")
    agent = weather_agent("weather-async-graph")
    cities = ["Rome", "Lima", "Oslo", "Kyiv", "Pune", "Doha"]
    await asyncio.gather(*(
        agent.ainvoke({"messages": [("user", f"parallel weather in {city}")]},
                      {"callbacks": [handler], "configurable": {"thread_id": city}})
        for city in cities
    ))  # fmt: skip
    decisions = delivered(client, trail, "weather-async")
    roots = {d["run_id"]: d for d in by_kind(decisions, "chain")}
    assert len(roots) == len(cities) and len(decisions) == 5 * len(cities)
    for decision in decisions:
        if decision["kind"] == "chain":
            continue
        root = roots[decision["parent_run_id"]]
        city = root["session_id"]
        assert decision["session_id"] == city
        if decision["kind"] == "tool_call":
            assert decision["input"]["arguments"]["city"] == city


def test_one_sync_handler_across_threads(trail: Trail, client: DecisionTrail) -> None:
    handler = DecisionTrailCallbackHandler(client=client, agent_name="weather-threads")
    agent = weather_agent("weather-threads-graph")

    def run(city: str) -> None:
        agent.invoke({"messages": [("user", f"parallel weather in {city}")]},
                     {"callbacks": [handler], "metadata": {"session_id": city}})  # fmt: skip

    cities = ["Bern", "Kiel", "Metz", "Graz"]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(run, cities))
    decisions = delivered(client, trail, "weather-threads")
    roots = {d["run_id"]: d["session_id"] for d in by_kind(decisions, "chain")}
    assert sorted(roots.values()) == sorted(cities)
    for decision in by_kind(decisions, "tool_call"):
        assert decision["input"]["arguments"]["city"] == roots[decision["parent_run_id"]]


async def test_sync_handler_in_async_runs(trail: Trail, client: DecisionTrail) -> None:
    handler = DecisionTrailCallbackHandler(client=client, agent_name="sync-in-async")
    agent = weather_agent("g")
    async for _ in agent.astream({"messages": [("user", "weather in Nice")]},
                                 {"callbacks": [handler]}, stream_mode="messages"):  # fmt: skip
        pass
    decisions = delivered(client, trail, "sync-in-async")
    assert len(by_kind(decisions, "llm_call")) == 2 and len(by_kind(decisions, "tool_call")) == 1


def test_nested_agents_hang_under_the_tool_that_called_them(
    trail: Trail, client: DecisionTrail
) -> None:
    handler = DecisionTrailCallbackHandler(client=client, agent_name="nested", chains="nodes")
    outer_agent("outer").invoke(
        {"messages": [("user", "ask the specialist in Bonn")]}, {"callbacks": [handler]}
    )
    decisions = delivered(client, trail, "nested")
    ids = {d["run_id"]: d for d in decisions}
    (ask,) = [d for d in by_kind(decisions, "tool_call") if d["action"] == "ask_specialist"]
    (inner_weather,) = [d for d in by_kind(decisions, "tool_call") if d["action"] == "get_weather"]
    inner_root = ids[ask["run_id"]]
    # the inner agent's tool hangs (through the inner graph's nodes) under the outer tool call
    chain = [inner_weather]
    while chain[-1].get("parent_run_id") in ids:
        chain.append(ids[chain[-1]["parent_run_id"]])
    assert inner_root in chain
    assert chain[-1]["metadata"]["gen_ai.operation.name"] == "invoke_agent"
    assert "parent_run_id" not in chain[-1]
    nodes = [d for d in by_kind(decisions, "chain") if "langgraph.node" in d["metadata"]]
    assert {d["metadata"]["langgraph.node"] for d in nodes} >= {"model", "tools"}


def test_errors_and_retries_are_recorded(trail: Trail, client: DecisionTrail) -> None:
    handler = DecisionTrailCallbackHandler(client=client, agent_name="failing")
    with pytest.raises(ModelDown):
        weather_agent("failing-graph").invoke(
            {"messages": [("user", "fail_on purpose")]}, {"callbacks": [handler]}
        )
    attempts = {"n": 0}

    def flaky(text: str) -> str:
        attempts["n"] += 1
        if attempts["n"] < 3:
            raise ConnectionError("try again")
        return text.upper()

    retried = RunnableLambda(flaky, name="flaky").with_retry(
        stop_after_attempt=3,
        wait_exponential_jitter=False,
        retry_if_exception_type=(ConnectionError,),
    )
    assert retried.invoke("ok", {"callbacks": [handler], "run_name": "retrying"}) == "OK"
    decisions = delivered(client, trail, "failing")
    (failed_call,) = by_kind(decisions, "llm_call")
    assert failed_call["metadata"]["status"] == "error"
    assert failed_call["output"]["error"]["type"] == "ModelDown"
    roots = by_kind(decisions, "chain")
    failed_root = next(d for d in roots if d["action"] == "failing-graph")
    assert failed_root["metadata"]["error"]["type"] == "ModelDown"
    retry_root = next(d for d in roots if d["action"] == "retrying")
    assert retry_root["metadata"]["langchain.retries"] == 2 and retry_root["output"] == "OK"


def test_personal_data_policy_marks_subjects(trail: Trail, client: DecisionTrail) -> None:
    policy = PersonalData(fields=("input", "output"),
                          subjects=lambda run: [run.metadata["customer"]])  # fmt: skip
    handler = DecisionTrailCallbackHandler(client=client, agent_name="personal", personal=policy)
    weather_agent("p").invoke(
        {"messages": [("user", "weather in Turin")]},
        {"callbacks": [handler], "metadata": {"customer": "customer-42"}},
    )
    client.flush(timeout=60)
    records = trail.decisions("personal")
    assert records and all(
        r["decision"]["data_subjects"] != ["customer-42"] for r in records
    )  # stored as commitments, never in clear
    assert all(r["decision"]["input"] != {} and "$commitment" in str(r["decision"]["input"])
               for r in records)  # fmt: skip


def test_handler_configured_from_the_environment(
    trail: Trail, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DECISIONTRAIL_URL", trail.url)
    monkeypatch.setenv("DECISIONTRAIL_API_KEY", trail.key)
    monkeypatch.setenv("DECISIONTRAIL_AGENT", "from-env")
    monkeypatch.setenv("DECISIONTRAIL_SPOOL_DIR", str(tmp_path / "env-spool"))
    handler = DecisionTrailCallbackHandler()
    ScriptedChatModel().invoke("weather in Bari", {"callbacks": [handler]})
    assert handler.flush(timeout=60).complete
    (decision,) = [r["decision"] for r in trail.decisions("from-env")]
    assert decision["kind"] == "llm_call" and decision["model"]["name"] == "scripted-1"
    handler.client.close()


def test_synchronous_handler_delivers_before_the_run_returns(trail: Trail, tmp_path: Path) -> None:
    client = DecisionTrail(trail.url, trail.key, spool_dir=tmp_path / "s", synchronous=True)
    handler = DecisionTrailCallbackHandler(client=client, agent_name="lambda-fn")
    weather_agent("x").invoke({"messages": [("user", "weather in Cork")]}, {"callbacks": [handler]})
    assert len(trail.decisions("lambda-fn")) == 4  # no flush: already there
    client.close()


def test_handler_is_a_langchain_callback_handler() -> None:
    assert issubclass(DecisionTrailCallbackHandler, BaseCallbackHandler)
    assert DecisionTrailCallbackHandler.run_inline


def test_embedded_mode_needs_no_service(tmp_path: Path) -> None:
    from decisiontrail_client.embedded import EmbeddedTransport

    handler = DecisionTrailCallbackHandler(
        agent_name="notebook-agent", embedded=tmp_path / "trail", spool_dir=tmp_path / "spool"
    )
    weather_agent("nb").invoke(
        {"messages": [("user", "weather in Ghent")]}, {"callbacks": [handler]}
    )
    assert handler.client.close(timeout=60).complete
    reader = EmbeddedTransport(tmp_path / "trail")
    try:
        kinds = sorted(r["decision"].get("kind") for r in reader.read("notebook-agent"))
    finally:
        reader.close()
    assert kinds == ["chain", "llm_call", "llm_call", "tool_call"]


def test_agent_actions_and_finish_through_langchains_callback_manager(
    trail: Trail, client: DecisionTrail
) -> None:
    """``AgentExecutor``-style agents report steps as agent actions and a finish."""
    from langchain_core.agents import AgentAction, AgentFinish
    from langchain_core.callbacks import CallbackManager

    handler = DecisionTrailCallbackHandler(client=client, agent_name="classic-agent")
    run = CallbackManager([handler]).on_chain_start({"name": "AgentExecutor"}, {"input": "hi"})
    run.on_agent_action(AgentAction("search", {"q": "refund policy"}, "I should search first."))
    run.on_agent_finish(AgentFinish({"output": "Refunds take 5 days."}, "I know the answer."))
    run.on_chain_end({"output": "Refunds take 5 days."})
    decisions = delivered(client, trail, "classic-agent")
    (action,) = by_kind(decisions, "agent_action")
    (finish,) = by_kind(decisions, "agent_finish")
    (root,) = by_kind(decisions, "chain")
    assert action["action"] == "search" and action["reasoning"] == "I should search first."
    assert action["input"] == {"tool": "search", "arguments": {"q": "refund policy"}}
    assert finish["output"] == {"output": "Refunds take 5 days."}
    assert action["parent_run_id"] == finish["parent_run_id"] == root["run_id"]
