"""Capture-side benchmark: what recording costs the application, beside Langfuse and OpenInference.

    python3 tasks.py bench capture            # full run, a few minutes
    python3 tasks.py bench capture --quick    # a short run to try it out

All in one run, on this machine:

1. time per callback on the calling thread (``on_chat_model_start`` + ``on_llm_end`` of one
   chat call, each call timed on its own): our handler, Langfuse's ``CallbackHandler``
   (pointed at a local port nothing listens on) and OpenInference's ``OpenInferenceTracer``
   (an OTLP/HTTP exporter to the same dead port, batched);
2. end-to-end time per run of a fake-LLM chain (prompt | fake chat model | parser) and of a
   LangGraph agent loop (a model that calls one tool, then answers), with no handler, a no-op
   handler (what LangChain's callback machinery itself costs once any handler is attached),
   ours (sending to a running service, and with the service down: spooling), Langfuse's, and
   OpenInference's instrumentation; rounds are interleaved and the median round is shown,
   as wall time and as the calling thread's CPU time (on a shared 2-core machine the wall
   time also carries other processes' noise; the CPU time is what the run itself spent);
3. records/s through our sender to a running ``decisiontrail serve`` (until ``flush`` says
   all were acknowledged) beside a raw asyncio HTTP/1.1 client posting the same batches on
   one keep-alive connection (the service's own ceiling for this batch size), and records/s
   into the spool with the service down (fsynced).

It is a script, not a test: it prints what it measured.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from decisiontrail_client import DecisionTrail
from decisiontrail_langchain import DecisionTrailCallbackHandler
from service import VENV_BIN, free_port, start_server  # bench/service.py

DEAD_PORT = free_port()  # nothing listens here: exporters fail fast and drop (or we spool)
os.environ.update({
    "LANGFUSE_PUBLIC_KEY": "pk-lf-bench", "LANGFUSE_SECRET_KEY": "sk-lf-bench",
    "LANGFUSE_BASE_URL": f"http://127.0.0.1:{DEAD_PORT}", "LANGFUSE_HOST": f"http://127.0.0.1:{DEAD_PORT}",
})  # fmt: skip

from langchain.agents import create_agent  # noqa: E402
from langchain_core.callbacks import BaseCallbackHandler  # noqa: E402
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel  # noqa: E402
from langchain_core.messages import AIMessage, HumanMessage  # noqa: E402
from langchain_core.output_parsers import StrOutputParser  # noqa: E402
from langchain_core.outputs import ChatGeneration, LLMResult  # noqa: E402
from langchain_core.prompts import ChatPromptTemplate  # noqa: E402
from langchain_core.tools import tool  # noqa: E402


class ToolCallingFake(GenericFakeChatModel):
    """LangChain's fake chat model, accepting tools (an agent binds them)."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self


@tool
def lookup(order: str) -> str:
    """Look an order up."""
    return f"order {order} shipped"


def agent_messages() -> Any:
    call = AIMessage(content="", tool_calls=[{"name": "lookup", "args": {"order": "42"},
                                              "id": "call_1"}])  # fmt: skip
    return itertools.cycle([call, AIMessage(content="It shipped.")])


def fake_chain() -> Any:
    prompt = ChatPromptTemplate.from_messages([("system", "Be brief."), ("user", "{question}")])
    model = GenericFakeChatModel(messages=itertools.cycle(["The answer is 42."]))
    return prompt | model | StrOutputParser()


# --- 1. per callback -------------------------------------------------------------------------


def time_callbacks(handler: Any, calls: int) -> list[float]:
    """Microseconds per callback, each timed on its own."""
    serialized = {"id": ["langchain", "chat_models", "fake", "FakeChat"], "name": "FakeChat"}
    messages = [[HumanMessage(content="What is the answer?")]]
    result = LLMResult(generations=[[ChatGeneration(message=AIMessage(content="42"))]])
    params = {"invocation_params": {"model": "fake", "temperature": 0}}
    metadata = {"ls_provider": "fake", "ls_model_name": "fake"}
    samples = []
    clock = time.perf_counter_ns
    for _ in range(calls):
        run_id = uuid.uuid4()
        started = clock()
        handler.on_chat_model_start(serialized, messages, run_id=run_id, parent_run_id=None,
                                    metadata=metadata, **params)  # fmt: skip
        middle = clock()
        handler.on_llm_end(result, run_id=run_id, parent_run_id=None)
        ended = clock()
        samples += [(middle - started) / 1000, (ended - middle) / 1000]
    return samples


# --- 2. end to end ---------------------------------------------------------------------------


class NoOpHandler(BaseCallbackHandler):
    """Does nothing: what LangChain's callback machinery costs with any handler at all."""

    run_inline = True


Config = tuple[Callable[[], Any], Callable[[], AbstractContextManager[Any]]]


def per_run(invoke: Callable[[], Any], runs: int) -> tuple[float, float]:
    """(wall, calling thread's CPU) µs per run."""
    started, cpu = time.perf_counter(), time.thread_time()
    for _ in range(runs):
        invoke()
    wall, used = time.perf_counter() - started, time.thread_time() - cpu
    return wall / runs * 1e6, used / runs * 1e6


def end_to_end(
    configs: dict[str, Config], runs: int, rounds: int
) -> dict[str, tuple[float, float]]:
    """Median over interleaved rounds of µs per run (wall, calling-thread CPU). Each round of
    a configuration runs inside its context (OpenInference instruments for its rounds only)."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in configs}
    for _ in range(rounds):
        for name, (invoke, around) in configs.items():
            with around():
                times[name].append(per_run(invoke, runs))
    return {
        name: (statistics.median(v[0] for v in values), statistics.median(v[1] for v in values))
        for name, values in times.items()
    }


# --- 3. sender throughput --------------------------------------------------------------------


def compare(
    title: str,
    runnable: Any,
    payload: Any,
    handlers: dict[str, Any],
    instrumented: Callable[[], AbstractContextManager[Any]],
    runs: int,
    rounds: int,
) -> None:
    def invoking(config: dict[str, Any]) -> Callable[[], Any]:
        return lambda: runnable.invoke(payload, config)

    configs: dict[str, Config] = {"no handler": (invoking({}), contextlib.nullcontext)}
    for name, handler in handlers.items():
        configs[name] = (invoking({"callbacks": [handler]}), contextlib.nullcontext)
    configs["OpenInference (instrumented)"] = (invoking({}), instrumented)
    print(f"\n2. end to end, {title}: µs per run (median of {rounds} rounds × {runs})")
    print(f"   {'':<38}{'wall':>10}{'vs none':>10}{'CPU':>10}{'vs none':>10}{'vs no-op':>10}")
    results = end_to_end(configs, runs, rounds)
    wall0, cpu0 = results["no handler"]
    _, noop = results["no-op handler (LangChain's own cost)"]
    for name, (wall, cpu) in results.items():
        versus = [(wall / wall0 - 1) * 100, (cpu / cpu0 - 1) * 100, (cpu / noop - 1) * 100]
        print(f"   {name:<38}{wall:>10.1f}{versus[0]:>+9.1f}%{cpu:>10.1f}{versus[1]:>+9.1f}%"
              f"{versus[2]:>+9.1f}%")  # fmt: skip


def record(i: int) -> dict[str, Any]:
    return {"agent": "bench", "action": "answer", "kind": "llm_call", "run_id": f"r{i}",
            "model": {"provider": "fake", "name": "fake-1"},
            "input": {"messages": [{"role": "user", "content": f"question {i}"}]},
            "output": {"messages": [{"role": "assistant", "content": "answer"}]},
            "usage": {"input_tokens": 12, "output_tokens": 3}}  # fmt: skip


async def raw_batches(port: int, token: str, bodies: list[bytes]) -> None:
    """Post each body on one keep-alive HTTP/1.1 connection, one after another."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for index, body in enumerate(bodies):
        head = (
            f"POST /v1/decisions/batch HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {token}\r\nIdempotency-Key: raw-{index}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        writer.write(head.encode() + body)
        status = await reader.readline()
        if b" 201 " not in status:
            raise RuntimeError(f"the service answered {status!r}")
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)
    writer.close()


def sender_rate(url: str, key: str, count: int, spool: Path, timeout: float) -> tuple[float, Any]:
    """Records/s: until ``flush`` says all were acknowledged (``timeout`` > 0), or, with the
    service down (``timeout`` 0), until all are in the spool."""
    client = DecisionTrail(url, key, spool_dir=spool, batch_size=200, flush_at_exit=None,
                           redaction=None)  # fmt: skip
    started = time.perf_counter()
    for i in range(count):
        client.record(record(i))
    if timeout:
        assert client.flush(timeout=timeout).complete
    else:
        while client.in_memory():
            time.sleep(0.001)
    rate = count / (time.perf_counter() - started)
    return rate, client.close(timeout=0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    # The other tracers log every failed export to the dead port; only our numbers matter here.
    warnings.filterwarnings("ignore")
    for name in ("opentelemetry", "langfuse", "openinference", "decisiontrail_client"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    quick = args.quick
    calls, runs, rounds = (2000, 100, 3) if quick else (20000, 300, 7)
    count = 4000 if quick else 40000

    from langfuse import Langfuse
    from langfuse.langchain import CallbackHandler as LangfuseHandler
    from openinference.instrumentation.langchain import LangChainInstrumentor
    from openinference.instrumentation.langchain._tracer import OpenInferenceTracer
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    Langfuse(flush_interval=1.0)  # the default client the handler uses
    provider = TracerProvider()
    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{DEAD_PORT}/v1/traces", timeout=1)
    provider.add_span_processor(BatchSpanProcessor(exporter))

    with tempfile.TemporaryDirectory(prefix="bench-capture-") as scratch:
        workdir = Path(scratch)
        print("starting decisiontrail serve …", file=sys.stderr)
        server = start_server("service", [str(VENV_BIN / "decisiontrail"), "serve"], workdir)
        url = f"http://127.0.0.1:{server.port}"
        dead = f"http://127.0.0.1:{DEAD_PORT}"
        try:
            ours = DecisionTrailCallbackHandler(url, server.token, spool_dir=workdir / "s1",
                                                flush_at_exit=None)  # fmt: skip
            ours_down = DecisionTrailCallbackHandler(dead, "dtk_x", spool_dir=workdir / "s2",
                                                     flush_at_exit=None)  # fmt: skip
            langfuse = LangfuseHandler()
            openinference = OpenInferenceTracer(provider.get_tracer("bench"), True)

            print("\n1. time per callback on the calling thread (µs; chat start + end)")
            print(f"   {'handler':<34}{'median':>9}{'p90':>9}{'p99':>9}")
            for name, handler in (("DecisionTrail", ours), ("Langfuse CallbackHandler", langfuse),
                                  ("OpenInference tracer", openinference)):  # fmt: skip
                samples = sorted(time_callbacks(handler, calls))
                p90, p99 = (samples[int(q * (len(samples) - 1))] for q in (0.9, 0.99))
                print(f"   {name:<34}{statistics.median(samples):>9.1f}{p90:>9.1f}{p99:>9.1f}")
            ours.flush(timeout=120)

            instrumentor = LangChainInstrumentor()

            @contextlib.contextmanager
            def instrumented() -> Iterator[None]:
                instrumentor.instrument(tracer_provider=provider)
                try:
                    yield
                finally:
                    instrumentor.uninstrument()

            handlers = {"no-op handler (LangChain's own cost)": NoOpHandler(),
                        "DecisionTrail (service up)": ours,
                        "DecisionTrail (service down, spool)": ours_down,
                        "Langfuse CallbackHandler": langfuse}  # fmt: skip
            agent_model = ToolCallingFake(messages=agent_messages())
            for title, runnable, payload in (
                ("fake-LLM chain", fake_chain(), {"question": "What is the answer?"}),
                ("agent loop (one tool call)", create_agent(agent_model, [lookup]),
                 {"messages": [("user", "Where is order 42?")]}),
            ):  # fmt: skip
                compare(title, runnable, payload, handlers, instrumented, runs, rounds)
            ours.flush(timeout=300)
            ours_down.client.close(timeout=0)

            print(f"\n3. records/s through the sender ({count:,} records, batches of 200)")
            bodies = [json.dumps([record(i) for i in range(s, s + 200)]).encode()
                      for s in range(0, count, 200)]  # fmt: skip
            started = time.perf_counter()
            asyncio.run(raw_batches(server.port, server.token, bodies))
            raw = count / (time.perf_counter() - started)
            rate, result = sender_rate(url, server.token, count, workdir / "s3", 600)
            print(f"   {'raw asyncio client, same batches (baseline)':<48}{raw:>10,.0f}")
            print(f"   {'DecisionTrail sender → service (acknowledged)':<48}{rate:>10,.0f}")
            rate, result = sender_rate(dead, "dtk_x", count, workdir / "s4", 0)
            print(f"   {'DecisionTrail sender → spool (service down)':<48}{rate:>10,.0f}"
                  f"   ({result.spooled:,} spooled, {result.dropped} dropped)")  # fmt: skip
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
