"""DecisionTrail service benchmark: decisions/s and latency over HTTP, beside ceilings measured
in the same run.

    .venv/bin/python bench/service.py            # full run, under ~3 minutes
    .venv/bin/python bench/service.py --quick    # a short run to try it out
    .venv/bin/python bench/service.py --py-spy /tmp/prof   # also profile both servers

What it measures, each against a fresh data directory in a temp dir:

- the real service: ``decisiontrail serve --port P`` as a subprocess (uvicorn, which picks
  uvloop + httptools when installed; the run checks the server process really loaded them),
  with an ingest API key made by ``decisiontrail keys create``;
- single-decision ingest (``POST /v1/decisions``) with an open-loop generator at fixed offered
  rates: a request is due every 1/rate seconds whether or not earlier ones have answered, and
  its latency runs from when it was due (so a stalled server cannot hide its queue). When
  more than two seconds' worth of requests are unanswered the generator stops sending and
  says so, and rates above the target rate are skipped once a lower one saturated. Then a
  closed-loop run at saturation;
- batch ingest (``POST /v1/decisions/batch``) of 100 and 1,000 decisions, closed loop with 2
  and 4 concurrent clients, in decisions/s;

beside these ceilings:

- (a) no-store: the same app (``create_app(settings)``, same middleware, routes, validation,
  API-key auth, metrics, same ``uvicorn.run`` call as ``serve``) whose routes see a copy of
  the service state with a ledger that returns receipts without sealing or storing anything
  (see :func:`serve_no_store` for the seam);
- (b) the SDK underneath without HTTP: ``decisiontrail.records.seal`` with a ``Keyring`` (hash
  + sign) and Genesis DB ``commit_events`` on the embedded client (one event per record), in
  batches; also ``ledger.writer.record`` called in-process, and validation + ``prepare`` alone;
- the load generator's own ceiling against a server that answers without reading the body
  (raw asyncio + httptools, and httpx for comparison).

The load generator runs in its own process (on a 2-core machine it competes with the server
for CPU); the table shows both processes' CPU use. Every number printed was measured in this
run. It is a script, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import dataclasses
import itertools
import math
import multiprocessing
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httptools
import orjson
import uvloop

SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parents[1]
# bench/ holds scripts named like the SDK packages (genesisdb.py …): import the packages.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

VENV_BIN = Path(sys.executable).parent
TENANT = "default"
SINGLE_RATES = (50, 100, 200, 400)
BATCHES = ((100, 2), (100, 4), (1000, 2), (1000, 4))
SATURATION_CONNECTIONS = 32
MAX_CONNECTIONS = 256  # the open-loop generator's connection pool
REQUEST_TIMEOUT = 30.0
BODY_LIMIT = 1_048_576  # the service's default max_body_bytes: a batch of 1,000 must fit
TARGET_BATCH, AIM_BATCH = 3_000, 5_000
TARGET_P99_MS, TARGET_RATE = 20.0, 200


# --- decision bodies ----------------------------------------------------------------------------

PROSE = (
    "the customer asked about a refund for order which arrived damaged and wants to know "
    "whether the warranty covers replacement or store credit policy allows returns within "
    "thirty days of delivery provided receipt is attached agent checked account history "
    "previous tickets shipping carrier tracking shows package left warehouse on time but "
    "was delayed at regional hub due weather conditions escalate to tier two if amount "
    "exceeds limit otherwise approve automatically and notify the billing team by email"
)
WORDS = PROSE.split()
AGENTS = ("support-bot", "refund-agent", "triage", "kyc-checker", "sales-assistant",
          "fraud-screen", "router", "summarizer")  # fmt: skip
KINDS = ("llm_call", "tool_call", "agent_action", "agent_finish", "retrieval", "chain",
         "human_review", "custom")  # fmt: skip
MODELS = (("openai", "gpt-4o", "2024-08-06"), ("anthropic", "claude-3-5-sonnet", "20241022"),
          ("google", "gemini-1.5-pro", "002"), ("mistral", "mistral-large", "2407"))  # fmt: skip
ACTIONS = ("approve_refund", "deny_refund", "escalate", "answer", "search_kb", "flag_fraud",
           "verify_identity", "route_ticket", "summarize_thread", "offer_discount")  # fmt: skip


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def decision_body(rng: random.Random, size: int) -> dict[str, Any]:
    """A realistic decision whose compact JSON is ``size`` bytes (±1)."""
    provider, name, version = rng.choice(MODELS)
    body: dict[str, Any] = {
        "agent": rng.choice(AGENTS),
        "action": rng.choice(ACTIONS),
        "kind": rng.choice(KINDS),
        "model": {
            "provider": provider, "name": name, "version": version,
            # 1.0 and 0.0 are what clients send for "default" and "greedy": integral floats
            "parameters": {"temperature": rng.choice((0.0, 0.2, 0.7, 1.0)),
                           "max_tokens": rng.choice((256, 512, 1024)), "top_p": 0.95},
        },
        "confidence": round(rng.uniform(0.05, 0.99), 3),
        "session_id": f"sess-{rng.randrange(10**5):05d}",
        "run_id": f"run-{rng.getrandbits(64):016x}",
        "tags": rng.sample(["refund", "tier-1", "tier-2", "eu", "us", "vip", "auto"], 2),
    }  # fmt: skip
    if rng.random() < 0.6:
        body["data_subjects"] = [f"cust-{rng.randrange(10**6):06d}"
                                 for _ in range(rng.randint(1, 2))]  # fmt: skip
        body["personal"] = rng.choice((["input"], ["input", "output"], ["input", "metadata.email"]))
        body["metadata"] = {"email": f"user{rng.randrange(10**5)}@example.com", "channel": "chat"}
    else:
        body["metadata"] = {"channel": rng.choice(("chat", "email", "api")), "priority": 2}
    if rng.random() < 0.5:
        body["trace_id"] = f"{rng.getrandbits(128):032x}"
        body["span_id"] = f"{rng.getrandbits(64):016x}"
        body["usage"] = {"input_tokens": rng.randrange(50, 4000),
                         "output_tokens": rng.randrange(5, 800), "cost": 0.0042}  # fmt: skip
    if rng.random() < 0.4:
        body["parent_run_id"] = f"run-{rng.getrandbits(64):016x}"
    if rng.random() < 0.3:
        body["started_at"] = "2025-06-01T12:00:00.120Z"
        body["ended_at"] = "2025-06-01T12:00:01.870Z"
    body["output"] = {"decision": body["action"], "reason": _text(rng, rng.randint(6, 20))}
    messages = rng.random() < 0.5
    body["input"] = [{"role": "system", "content": "You are a support agent."},
                     {"role": "user", "content": ""}] if messages else ""  # fmt: skip
    pad = size - len(orjson.dumps(body))
    filler = _text(rng, pad // 5 + 2)[: max(pad, 1)]
    if messages:
        body["input"][1]["content"] = filler
    else:
        body["input"] = filler
    return body


def decision_bodies(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """Varied ~1 KB decisions (850–1,040 bytes, so a batch of 1,000 fits the 1 MiB limit)."""
    rng = random.Random(seed)
    return [decision_body(rng, rng.randint(850, 1040)) for _ in range(count)]


# --- the load generator (runs in its own process) -------------------------------------------------


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; one request at a time; responses parsed by httptools."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[int] | None = None
        self.closed = False
        self.keep_alive = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(exc)

    def on_message_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(self.parser.get_status_code())

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(exc or ConnectionResetError("the server closed the connection"))

    def _fail(self, exc: BaseException) -> None:
        self.closed = True
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    async def send(self, raw: bytes) -> int:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return await self.waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class _Pool:
    """Keep-alive connections, at most ``limit`` in use (a request waits for one beyond that)."""

    def __init__(self, port: int, limit: int) -> None:
        self.port = port
        self.slots = asyncio.Semaphore(limit)
        self.idle: list[_Connection] = []

    async def _connection(self) -> _Connection:
        while self.idle:
            conn = self.idle.pop()  # most recently used first: the rest may time out idle
            if not conn.closed:
                return conn
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(_Connection, "127.0.0.1", self.port)
        return conn

    async def request(self, raw: bytes, timeout: float) -> int:
        async with self.slots:
            conn = await self._connection()
            try:
                status = await asyncio.wait_for(conn.send(raw), timeout)
            except BaseException:
                conn.close()
                raise
            if conn.keep_alive and not conn.closed:
                self.idle.append(conn)
            else:
                conn.close()
            return status

    def close(self) -> None:
        for conn in self.idle:
            conn.close()


@dataclass
class Sample:
    """What one load run saw, summarized in the generator process."""

    label: str
    offered: float | None  # requests/s, None for closed loop
    requests: int
    ok: int
    decisions_per_request: int
    seconds: float
    latencies: list[float]  # seconds, of successful requests
    statuses: dict[str, int]
    lag_p99: float = 0.0  # how late the generator sent (open loop)
    client_cpu: float = 0.0  # the generator's CPU seconds over ``seconds``
    server_cpu: float | None = None  # filled in by the caller
    body_bytes: int = 0
    stopped_at: float | None = None  # open loop: when the backlog made it stop sending
    skipped: str = ""  # why the run was not made

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0

    @property
    def decisions_rate(self) -> float:
        return self.rate * self.decisions_per_request

    def quantile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def errors(self) -> dict[str, int]:
        return {code: n for code, n in self.statuses.items() if not code.startswith("2")}

    @property
    def saturated(self) -> bool:
        """The server did not keep up with the offered rate."""
        return self.stopped_at is not None or (
            self.offered is not None and self.rate < 0.9 * self.offered
        )

    def outcome(self) -> str:
        """Errors by status code (or exception), and whether the generator had to stop."""
        parts = [f"{code}:{n}" for code, n in self.errors.items()]
        if self.stopped_at is not None:
            parts.append(f"overloaded, stopped sending at {self.stopped_at:.1f} s")
        return " ".join(parts) or "0"


def _raw_request(port: int, path: str, token: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


_BODY_CACHE: dict[int, list[bytes]] = {}


def _encoded_bodies(count: int) -> list[bytes]:
    if count not in _BODY_CACHE:
        _BODY_CACHE[count] = [orjson.dumps(body) for body in decision_bodies(count)]
    return _BODY_CACHE[count]


def _requests(spec: dict[str, Any]) -> list[bytes]:
    """Distinct raw requests to cycle through (single decisions or batches)."""
    bodies = _encoded_bodies(4000)
    port, token, batch = spec["port"], spec["token"], spec["batch"]
    if batch == 1:
        return [_raw_request(port, "/v1/decisions", token, b) for b in bodies]
    requests = []
    for start in range(0, len(bodies) - batch + 1, batch):
        payload = b"[" + b",".join(bodies[start : start + batch]) + b"]"
        assert len(payload) <= BODY_LIMIT, f"a batch of {batch} is {len(payload)} bytes"
        requests.append(_raw_request(port, "/v1/decisions/batch", token, payload))
    return requests


def _record(statuses: Counter[str], exc: BaseException) -> None:
    if isinstance(exc, TimeoutError):
        statuses["timeout"] += 1
    else:
        statuses[f"conn:{type(exc).__name__}"] += 1


async def _open_loop(spec: dict[str, Any], requests: list[bytes], seconds: float) -> Sample:
    rate = float(spec["rate"])
    pool = _Pool(spec["port"], MAX_CONNECTIONS)
    statuses: Counter[str] = Counter()
    latencies: list[float] = []
    lags: list[float] = []
    finished: list[float] = []
    count = max(1, int(rate * seconds))
    # More than two seconds of offered requests unanswered: the server is not keeping up, and
    # sending on would only grow its queue (and the time to drain it). Stop and say so.
    backlog_limit = max(64, int(2 * rate))
    in_flight = 0
    stopped_at: float | None = None

    async def one(due: float, raw: bytes) -> None:
        nonlocal in_flight
        lags.append(time.perf_counter() - due)
        in_flight += 1
        try:
            status = await pool.request(raw, REQUEST_TIMEOUT)
        except (OSError, TimeoutError, httptools.HttpParserError) as exc:
            _record(statuses, exc)
            return
        finally:
            in_flight -= 1
        done = time.perf_counter()
        statuses[str(status)] += 1
        if 200 <= status < 300:
            latencies.append(done - due)
            finished.append(done)

    cpu0 = time.process_time()
    tasks = []
    source = itertools.cycle(requests)
    start = time.perf_counter() + 0.005
    for i in range(count):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if in_flight > backlog_limit:
            stopped_at = time.perf_counter() - start
            break
        tasks.append(asyncio.ensure_future(one(due, next(source))))
    await asyncio.gather(*tasks)
    pool.close()
    # Achieved rate: successes over the span from the first due time to the last answer (at
    # least the scheduled span, so a server that keeps up shows the offered rate).
    span = max(max(finished, default=start) - start, len(tasks) / rate)
    lags.sort()
    return Sample(spec["label"], rate, len(tasks), len(latencies), spec["batch"], span,
                  latencies, dict(statuses), lag_p99=lags[int(0.99 * (len(lags) - 1))],
                  client_cpu=time.process_time() - cpu0, stopped_at=stopped_at)  # fmt: skip


async def _closed_loop(spec: dict[str, Any], requests: list[bytes], seconds: float) -> Sample:
    clients = int(spec["clients"])
    pool = _Pool(spec["port"], clients)
    statuses: Counter[str] = Counter()
    latencies: list[float] = []
    source = itertools.cycle(requests)
    deadline = 0.0

    async def client() -> None:
        while time.perf_counter() < deadline:
            sent = time.perf_counter()
            try:
                status = await pool.request(next(source), REQUEST_TIMEOUT)
            except (OSError, TimeoutError, httptools.HttpParserError) as exc:
                _record(statuses, exc)
                await asyncio.sleep(0.01)  # a refused connection must not become a busy loop
                continue
            statuses[str(status)] += 1
            if 200 <= status < 300:
                latencies.append(time.perf_counter() - sent)

    cpu0 = time.process_time()
    start = time.perf_counter()
    deadline = start + seconds
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - start
    pool.close()
    return Sample(spec["label"], None, sum(statuses.values()), len(latencies), spec["batch"],
                  elapsed, latencies, dict(statuses),
                  client_cpu=time.process_time() - cpu0)  # fmt: skip


async def _httpx_closed_loop(spec: dict[str, Any], requests: list[bytes], seconds: float) -> Sample:
    import httpx

    clients = int(spec["clients"])
    bodies = [raw.split(b"\r\n\r\n", 1)[1] for raw in requests]
    statuses: Counter[str] = Counter()
    latencies: list[float] = []
    source = itertools.cycle(bodies)
    headers = {"Authorization": f"Bearer {spec['token']}", "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{spec['port']}", headers=headers, limits=limits, timeout=30
    ) as http:

        async def client() -> None:
            while time.perf_counter() < deadline:
                sent = time.perf_counter()
                response = await http.post("/v1/decisions", content=next(source))
                statuses[str(response.status_code)] += 1
                latencies.append(time.perf_counter() - sent)

        cpu0 = time.process_time()
        start = time.perf_counter()
        deadline = start + seconds
        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - start
    return Sample(spec["label"], None, sum(statuses.values()), len(latencies), 1, elapsed,
                  latencies, dict(statuses), client_cpu=time.process_time() - cpu0)  # fmt: skip


def run_load(spec: dict[str, Any]) -> Sample:
    """One load run in the generator process: a warm-up (not counted), then the measurement."""
    kinds = {"open": _open_loop, "closed": _closed_loop, "httpx": _httpx_closed_loop}
    run = kinds[spec["kind"]]
    requests = _requests(spec)

    async def main() -> Sample:
        if spec["warmup"] > 0:
            await run(spec, requests, spec["warmup"])
        sample = await run(spec, requests, spec["seconds"])
        sample.body_bytes = len(requests[0].split(b"\r\n\r\n", 1)[1])
        return sample

    return uvloop.run(main())


# --- servers ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of one process, all threads (NaN once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Server:
    """A server subprocess (optionally under py-spy) and how to reach and measure it."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    data_dir: Path | None = None
    profile: Path | None = None
    token: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        """The server's own process (py-spy's child when profiled)."""
        if self.profile is None:
            return self.process.pid
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        found = children.read_text().split() if children.exists() else []
        return int(found[0]) if found else self.process.pid

    def cpu_seconds(self) -> float:
        """User + system CPU of the server process (all threads) and of the worker processes
        it started (its live children: the embedded stores' writers)."""
        total = _cpu_seconds(self.pid)
        children = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        for child in children.read_text().split() if children.exists() else []:
            seconds = _cpu_seconds(int(child))
            if not math.isnan(seconds):  # a child that just ended
                total += seconds
        return total

    def loaded(self, *names: str) -> dict[str, bool]:
        """Whether the process has mapped each named extension module (e.g. uvloop)."""
        try:
            maps = Path(f"/proc/{self.pid}/maps").read_text()
        except OSError:
            return {name: False for name in names}
        return {name: f"/{name}/" in maps for name in names}

    def wait_ready(self, path: str = "/healthz", timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                    if sock.recv(64).startswith(b"HTTP/1.1 2"):
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not come up on port {self.port}")

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)  # under py-spy: the server, so py-spy writes
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _data_dir_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DECISIONTRAIL_")}
    env["DECISIONTRAIL_DATA_DIR"] = str(data_dir)
    return env


def create_ingest_key(data_dir: Path) -> str:
    """``decisiontrail keys create --tenant default --scope ingest``; the printed key."""
    result = subprocess.run(
        [str(VENV_BIN / "decisiontrail"), "keys", "create", "--tenant", TENANT,
         "--scope", "ingest"],
        env=_data_dir_env(data_dir), cwd=data_dir.parent, capture_output=True, text=True,
        timeout=120, check=True,
    )  # fmt: skip
    return next(line for line in result.stdout.splitlines() if line.startswith("dtk_"))


def start_server(
    name: str, command: list[str], workdir: Path, *, profile: Path | None = None
) -> Server:
    """Start ``command`` (which gets ``--port P`` appended) with a fresh data directory."""
    home = workdir / name
    data_dir = home / "data"
    home.mkdir(parents=True)
    token = create_ingest_key(data_dir)
    port = free_port()
    full = [*command, "--port", str(port)]
    if profile is not None:
        py_spy = shutil.which("py-spy", path=str(VENV_BIN)) or shutil.which("py-spy")
        if py_spy is None:
            raise SystemExit("--py-spy needs py-spy: .venv/bin/pip install py-spy")
        full = [py_spy, "record", "--format", "raw", "--rate", "250", "--nonblocking",
                "-o", str(profile), "--", *full]  # fmt: skip
    log = (home / "server.log").open("wb")
    process = subprocess.Popen(
        full, env=_data_dir_env(data_dir), cwd=home, stdout=log, stderr=subprocess.STDOUT
    )
    server = Server(name, process, port, data_dir, profile, token)
    try:
        server.wait_ready()
    except BaseException:
        server.stop()
        print((home / "server.log").read_text()[-3000:], file=sys.stderr)
        raise
    return server


def start_trivial(workdir: Path) -> Server:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--serve-trivial", "--port", str(port)]
    )
    server = Server("trivial", process, port, token="dtk_unused")
    server.wait_ready("/")
    return server


def serve_trivial(port: int) -> None:
    """The client-ceiling server: answers every request with a canned 201, body unread."""
    response = (
        b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
    )

    class Trivial(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport: asyncio.Transport = transport  # type: ignore[assignment]
            self.parser = httptools.HttpRequestParser(self)

        def data_received(self, data: bytes) -> None:
            self.parser.feed_data(data)

        def on_message_complete(self) -> None:
            self.transport.write(response)

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Trivial, "127.0.0.1", port)
        await server.serve_forever()

    uvloop.run(main())


def serve_no_store(port: int) -> None:
    """Ceiling (a): the real app and ``serve``'s uvicorn call, with nothing sealed or stored.

    The seam: the app's own lifespan opens the service state as usual; a wrapper around it then
    puts a copy of that state in ``app.state.service`` (where ``deps.get_state`` finds it for
    every route) whose ``ledger`` answers ``record`` with receipts made up on the spot.
    Everything else is the real thing: the middleware (tracing, access log, body limit),
    routing, JSON decoding, ``DecisionCreate`` validation, the dependencies (state, API-key
    authentication, cached, and scope), ``decisions.prepare`` (canonical-JSON check), metrics
    and the receipt JSON. (Not ``app.dependency_overrides``: with any override set, FastAPI
    re-analyses every dependency's signature on every request, which would understate the
    ceiling by a sixth.)
    """
    from contextlib import asynccontextmanager
    from datetime import UTC, datetime

    import uuid_utils
    import uvicorn

    from decisiontrail.app import create_app
    from decisiontrail.config import Settings
    from decisiontrail.ledger import PreparedDecision, Receipt
    from decisiontrail.records import GENESIS_HASH, format_time

    class NoStoreWriter:
        async def record(
            self, tenant: str, decisions: Sequence[PreparedDecision], **_: Any
        ) -> list[Receipt]:
            now = format_time(datetime.now(UTC))
            made_up = {"tenant": tenant, "sequence": 0, "hash": GENESIS_HASH,
                        "prev_hash": GENESIS_HASH, "signature": "", "key_id": "",
                        "recorded_at": now}  # fmt: skip
            return [
                Receipt({**made_up, "id": str(uuid_utils.uuid7()), "chain": d.decision["agent"]}, 0)
                for d in decisions
            ]

    settings = Settings()
    app = create_app(settings)
    opened = app.router.lifespan_context

    @asynccontextmanager
    async def no_store(app_: Any) -> Any:
        async with opened(app_) as maybe_state:
            real = app_.state.service
            view = copy.copy(real)
            view.ledger = dataclasses.replace(real.ledger, writer=NoStoreWriter())
            app_.state.service = view
            try:
                yield maybe_state
            finally:
                app_.state.service = real

    app.router.lifespan_context = no_store
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")  # as `serve` does


def stored_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


# --- ceiling (b): the SDK underneath, no HTTP -----------------------------------------------------


@dataclass
class SdkRates:
    batch: int
    records: int
    seal: float  # records/s, hash + sign
    commit: float  # records/s, commit_events only
    seal_commit: float  # records/s, both, one after the other
    ledger_decisions: int
    ledger: float  # decisions/s, ledger.writer.record in-process


async def _sdk_rates(
    workdir: Path, batch: int, total: int, seconds: float, bodies: list[dict[str, Any]]
) -> SdkRates:
    """Up to ``total`` records for each measurement, stopping early after ``seconds``."""
    from datetime import UTC, datetime

    import uuid_utils

    from decisiontrail.config import Settings
    from decisiontrail.decisions import prepare
    from decisiontrail.models import DecisionCreate
    from decisiontrail.records import GENESIS_HASH, seal, split_personal
    from decisiontrail.signing import Keyring
    from decisiontrail.state import MAX_EVENT_BYTES, ServiceState
    from genesisdb import Client
    from genesisdb.engine import Engine
    from genesisdb.transports.embedded import EmbeddedTransport

    keyring, _ = Keyring.load_or_create(workdir / "sdk-keys", "bench.local")
    prepared = [prepare(DecisionCreate.model_validate(body)) for body in bodies]
    committed = [split_personal(p.decision, p.personal)[0] for p in prepared]

    def open_client(name: str) -> tuple[Client, Engine]:
        engine = Engine.open(f"sqlite:///{workdir / name}", max_event_bytes=MAX_EVENT_BYTES)
        return Client(transport=EmbeddedTransport(engine=engine)), engine

    # seal + commit_events: one event per record, chained per agent
    client, engine = open_client(f"sdk-{batch}.db")
    heads: dict[str, tuple[int, str]] = {}
    source = itertools.cycle(committed)
    seal_time = commit_time = 0.0
    records = 0
    while records + batch <= total and (records == 0 or seal_time + commit_time < seconds):
        records += batch
        started = time.perf_counter()
        now = datetime.now(UTC)
        events = []
        for _ in range(batch):
            decision = next(source)
            agent = decision["agent"]
            sequence, prev_hash = heads.get(agent, (0, GENESIS_HASH))
            record_id = str(uuid_utils.uuid7())
            record = seal(decision=decision, record_id=record_id, tenant=TENANT, chain=agent,
                          sequence=sequence, prev_hash=prev_hash, recorded_at=now,
                          keyring=keyring)  # fmt: skip
            heads[agent] = (sequence + 1, record["hash"])
            events.append({"source": "bench", "type": "io.decisiontrail.decision.recorded",
                           "subject": f"/tenants/{TENANT}/agents/{agent}/decisions/{record_id}",
                           "data": {"record": record}})  # fmt: skip
        sealed = time.perf_counter()
        await client.commit_events(events)
        seal_time += sealed - started
        commit_time += time.perf_counter() - sealed
    await client.close()
    engine.close()

    # ledger.writer.record in-process: the route's storage step without HTTP, on a ledger built by
    # ServiceState.open exactly as the service builds it (fresh embedded stores)
    settings = Settings(_env_file=None, data_dir=workdir / f"ledger-{batch}")
    state = await ServiceState.open(settings)
    chunks = [prepared[i : i + batch] for i in range(0, len(prepared) - batch + 1, batch)]
    started = time.perf_counter()
    recorded = 0
    for chunk in itertools.cycle(chunks):
        if recorded + batch > total or (recorded and time.perf_counter() - started >= seconds):
            break
        await state.ledger.writer.record(TENANT, chunk)
        recorded += batch
    ledger_time = time.perf_counter() - started
    await state.close()

    both = seal_time + commit_time
    return SdkRates(batch, records, records / seal_time, records / commit_time, records / both,
                    recorded, recorded / ledger_time)  # fmt: skip


def validation_rate(bodies: list[dict[str, Any]]) -> float:
    """Decisions/s through ``DecisionCreate`` validation from JSON bytes and ``prepare``."""
    from decisiontrail.decisions import prepare
    from decisiontrail.models import DecisionCreate

    encoded = [orjson.dumps(body) for body in bodies]
    started = time.perf_counter()
    for raw in encoded:
        prepare(DecisionCreate.model_validate_json(raw))
    return len(encoded) / (time.perf_counter() - started)


def sdk_ceilings(workdir: Path, quick: bool) -> tuple[list[SdkRates], float]:
    bodies = decision_bodies(2000, seed=11)
    totals = {1: 300, 100: 3000, 1000: 6000} if quick else {1: 1000, 100: 10000, 1000: 20000}
    seconds = 1.0 if quick else 2.0
    rates = [asyncio.run(_sdk_rates(workdir, b, n, seconds, bodies)) for b, n in totals.items()]
    return rates, validation_rate(bodies)


# --- the run ------------------------------------------------------------------------------------


@dataclass
class Plan:
    step: float  # seconds per offered rate
    warmup: float
    saturation: float
    batch: float
    client: float


FULL = Plan(step=6, warmup=1, saturation=4, batch=5, client=2.5)
QUICK = Plan(step=2, warmup=0.5, saturation=2, batch=2.5, client=1.5)


def settle(server: Server, limit: float = 30.0) -> None:
    """Wait until the server is idle (it may still work off requests a run gave up on)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = server.cpu_seconds()
        time.sleep(0.25)
        if server.cpu_seconds() - before < 0.05:  # under 20% of a core
            return


def measure(
    pool: ProcessPoolExecutor, server: Server, spec: dict[str, Any], say: Callable[[str], None]
) -> Sample:
    spec = {"port": server.port, "token": server.token, "batch": 1, **spec}
    settle(server)
    cpu0, wall0 = server.cpu_seconds(), time.perf_counter()
    sample = pool.submit(run_load, spec).result()
    wall = time.perf_counter() - wall0
    sample.server_cpu = (server.cpu_seconds() - cpu0) / wall  # share of one core, incl. warm-up
    say(f"  {server.name:>9} {spec['label']:<22} {sample.rate:>8,.0f} req/s "
        f"{sample.decisions_rate:>9,.0f} decisions/s  p50 {ms(sample.quantile(0.5))} "
        f"p99 {ms(sample.quantile(0.99))} ms  CPU server {sample.server_cpu:.0%} generator "
        f"{sample.client_cpu / sample.seconds:.0%}  errors: {sample.outcome()}")  # fmt: skip
    return sample


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f}"


def service_runs(
    pool: ProcessPoolExecutor, server: Server, plan: Plan, say: Callable[[str], None]
) -> dict[str, Sample]:
    results: dict[str, Sample] = {}
    saturated_at: int | None = None
    for rate in SINGLE_RATES:
        label = f"single @ {rate}/s"
        if saturated_at is not None and rate > TARGET_RATE:
            # Past the target rate, a server that already fell behind only grows a queue.
            results[label] = Sample(
                label, rate, 0, 0, 1, 0.0, [], {}, skipped=f"skipped: saturated at {saturated_at}/s"
            )
            continue
        spec = {"kind": "open", "label": label, "rate": rate, "seconds": plan.step,
                "warmup": plan.warmup}  # fmt: skip
        results[label] = measure(pool, server, spec, say)
        if saturated_at is None and results[label].saturated:
            saturated_at = rate
    label = f"single closed x{SATURATION_CONNECTIONS}"
    results["single saturation"] = measure(pool, server, {
        "kind": "closed", "label": label, "clients": SATURATION_CONNECTIONS,
        "seconds": plan.saturation, "warmup": plan.warmup}, say)  # fmt: skip
    for batch, clients in BATCHES:
        label = f"batch {batch} x{clients} clients"
        results[label] = measure(pool, server, {
            "kind": "closed", "label": label, "batch": batch, "clients": clients,
            "seconds": plan.batch, "warmup": min(plan.warmup, 0.5)}, say)  # fmt: skip
    return results


def client_ceilings(
    pool: ProcessPoolExecutor, workdir: Path, plan: Plan, say: Callable[[str], None]
) -> dict[str, Sample]:
    server = start_trivial(workdir)
    base = {"seconds": plan.client, "warmup": 0.3}
    runs = {
        "raw": {"kind": "closed", "label": "raw closed x32", "clients": SATURATION_CONNECTIONS},
        "httpx 8": {"kind": "httpx", "label": "httpx closed x8", "clients": 8},
        "httpx 32": {"kind": "httpx", "label": "httpx closed x32", "clients": 32},
        "open": {"kind": "open", "label": "raw open @ 400/s", "rate": 400},
    }
    try:
        return {key: measure(pool, server, {**base, **spec}, say) for key, spec in runs.items()}
    finally:
        server.stop()


def summarize_profile(path: Path, say: Callable[[str], None], top: int = 22) -> None:
    """Self and inclusive sample shares per file:function from py-spy's collapsed stacks."""
    if not path.exists() or not path.stat().st_size:
        say(f"  (no profile at {path})")
        return
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        if "_find_and_load" in stack or "LifespanOn" in stack:
            continue  # imports and start-up, not serving
        total += n
        frames = [_frame_name(frame) for frame in stack.split(";") if "(" in frame]
        if frames:
            own[frames[-1]] += n
        for name in set(frames):
            inclusive[name] += n
    if not total:
        say(f"  {path}: no samples while serving")
        return
    say(
        f"  {path}: {total:,} samples while serving (all threads; py-spy leaves out idle "
        "threads, but a thread blocked inside a C call, such as an fsync, counts)"
    )
    say("  self time:")
    for name, n in own.most_common(top):
        say(f"    {n / total:6.1%}  {name}")
    say("  inclusive (the service, the SDKs and the libraries they call):")
    ours = [(name, n) for name, n in inclusive.most_common() if name.startswith(INCLUSIVE)]
    for name, n in [(k, v) for k, v in ours if not k.startswith("decisiontrail/cli.py")][:top]:
        say(f"    {n / total:6.1%}  {name}")


INCLUSIVE = ("decisiontrail/", "genesisdb/", "sapixdb/", "ledgerstore/", "rfc8785/", "pydantic/",
             "fastapi/dependencies/", "opentelemetry/")  # fmt: skip


def _frame_name(frame: str) -> str:
    function, _, where = frame.partition(" (")
    location = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/service/", "/sdk/", "/lib/python3.11/"):
        if marker in location:
            location = location.split(marker, 1)[1]
            break
    return f"{location}:{function}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short steps, for a smoke run")
    parser.add_argument(
        "--py-spy",
        type=Path,
        metavar="PREFIX",
        help="run both services under py-spy; writes PREFIX-{real,no-store}.txt",
    )
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-trivial", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-no-store", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_trivial:
        serve_trivial(args.port)
        return 0
    if args.serve_no_store:
        serve_no_store(args.port)
        return 0

    from rich.console import Console

    console = Console()
    if not console.is_terminal:
        console = Console(width=220)

    def say(text: str) -> None:
        console.print(text, markup=False, highlight=False)

    plan = QUICK if args.quick else FULL
    started = time.perf_counter()
    load_before = os.getloadavg()
    say(f"DecisionTrail service benchmark, {os.cpu_count()} cores, load average "
        f"{load_before[0]:.2f} at start{' (quick)' if args.quick else ''}")  # fmt: skip
    for name in [n for n in os.environ if n.startswith("DECISIONTRAIL_")]:
        del os.environ[name]  # fresh embedded stores everywhere, whatever the shell holds
    workdir = Path(tempfile.mkdtemp(prefix="bench-service-"))
    context = multiprocessing.get_context("spawn")
    try:
        say("ceiling (b): the SDK underneath, no HTTP …")
        sdk, validate = sdk_ceilings(workdir, args.quick)
        for r in sdk:
            say(f"  batch {r.batch:>5}: seal {r.seal:,.0f}/s, commit_events {r.commit:,.0f}/s, "
                f"both {r.seal_commit:,.0f}/s, ledger.writer.record {r.ledger:,.0f}/s")  # fmt: skip
        with ProcessPoolExecutor(1, mp_context=context) as pool:
            say("load generator ceiling (a server that answers without reading) …")
            clients = client_ceilings(pool, workdir, plan, say)
            say("ceiling (a): the same app, nothing sealed or stored …")
            profile = args.py_spy
            no_store = start_server(
                "no-store", [sys.executable, str(SCRIPT), "--serve-no-store"], workdir,
                profile=profile and Path(f"{profile}-no-store.txt"),
            )  # fmt: skip
            assert no_store.data_dir is not None
            bytes_before = stored_bytes(no_store.data_dir)
            try:
                ceiling = service_runs(pool, no_store, plan, say)
            finally:
                no_store.stop()
            grew = stored_bytes(no_store.data_dir) - bytes_before
            say("DecisionTrail (decisiontrail serve) …")
            real = start_server(
                "real", [str(VENV_BIN / "decisiontrail"), "serve"], workdir,
                profile=profile and Path(f"{profile}-real.txt"),
            )  # fmt: skip
            loaded = real.loaded("uvloop", "httptools")
            try:
                service = service_runs(pool, real, plan, say)
            finally:
                real.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    report(say, console, service, ceiling, clients, sdk, validate, loaded, grew)
    say(f"\nload average {load_before[0]:.2f} at start, {os.getloadavg()[0]:.2f} at the end; "
        f"run took {time.perf_counter() - started:.0f} s")  # fmt: skip
    if args.py_spy:
        for name in ("real", "no-store"):
            say(f"\npy-spy profile of the {name} server:")
            summarize_profile(Path(f"{args.py_spy}-{name}.txt"), say)
    return 0


# --- the report -----------------------------------------------------------------------------


def report(
    say: Callable[[str], None],
    console: Any,
    service: dict[str, Sample],
    ceiling: dict[str, Sample],
    clients: dict[str, Sample],
    sdk: list[SdkRates],
    validate: float,
    loaded: dict[str, bool],
    grew: int,
) -> None:
    from rich.table import Table

    def cpu(sample: Sample) -> str:
        if sample.skipped:
            return ""
        return f"{sample.server_cpu:.0%}/{sample.client_cpu / sample.seconds:.0%}"

    def cells(sample: Sample, decisions: bool = False) -> list[str]:
        """Achieved rate, p50, p99, max, errors."""
        if sample.skipped:
            return ["—", "—", "—", "—", sample.skipped]
        achieved = sample.decisions_rate if decisions else sample.rate
        return [f"{achieved:,.0f}", ms(sample.quantile(0.5)), ms(sample.quantile(0.99)),
                ms(max(sample.latencies, default=float("nan"))), sample.outcome()]  # fmt: skip

    single = Table(title="Single-decision ingest: POST /v1/decisions, ~1 KB bodies, open loop "
                   "(latency from the scheduled send time)", title_justify="left")  # fmt: skip
    for column in ("offered", "achieved/s", "p50 ms", "p99 ms", "max ms", "errors",
                   "CPU srv/gen", "no-store achieved/s", "p50 ms", "p99 ms", "max ms", "errors",
                   "target"):  # fmt: skip
        single.add_column(column, justify="right")
    for rate in SINGLE_RATES:
        ours, top = service[f"single @ {rate}/s"], ceiling[f"single @ {rate}/s"]
        target = ""
        if rate == TARGET_RATE:
            good = ours.quantile(0.99) * 1000 < TARGET_P99_MS and ours.outcome() == "0"
            target = f"p99 < {TARGET_P99_MS:.0f} ms: {'PASS' if good else 'FAIL'}"
        single.add_row(f"{rate}/s", *cells(ours), cpu(ours), *cells(top), target)
    ours, top = service["single saturation"], ceiling["single saturation"]
    single.add_row(f"closed x{SATURATION_CONNECTIONS}", *cells(ours), cpu(ours), *cells(top),
                   "saturation")  # fmt: skip
    console.print(single)

    by_batch = {r.batch: r for r in sdk}
    batches = Table(title="Batch ingest: POST /v1/decisions/batch, closed loop at saturation "
                    "(latency per request)", title_justify="left")  # fmt: skip
    for column in (
        "batch x clients",
        "requests",
        "decisions/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "errors",
        "CPU srv/gen",
        "no-store decisions/s",
        "p50 ms",
        "p99 ms",
        "ledger.writer.record in-proc/s",
        "SDK seal+commit/s",
        "target ≥3,000 (aim 5,000)",
    ):
        batches.add_column(column, justify="right")
    for batch, n in BATCHES:
        label = f"batch {batch} x{n} clients"
        ours, top, raw = service[label], ceiling[label], by_batch[batch]
        verdict = ("PASS (aim met)" if ours.decisions_rate >= AIM_BATCH else "PASS"
                   if ours.decisions_rate >= TARGET_BATCH else "FAIL")  # fmt: skip
        batches.add_row(f"{batch} x{n}", f"{ours.ok}", *cells(ours, decisions=True), cpu(ours),
                        *cells(top, decisions=True)[:3], f"{raw.ledger:,.0f}",
                        f"{raw.seal_commit:,.0f}", verdict)  # fmt: skip
    console.print(batches)

    base = Table(title="Ceilings measured in this run", title_justify="left")
    base.add_column("what")
    base.add_column("rate", justify="right")
    base.add_column("notes")
    for key, what in (("raw", "load generator (raw asyncio + httptools), 32 conns"),
                      ("httpx 8", "httpx.AsyncClient, 8 conns"),
                      ("httpx 32", "httpx.AsyncClient, 32 conns")):  # fmt: skip
        s = clients[key]
        base.add_row(
            what + " vs a no-op server",
            f"{s.rate:,.0f} req/s",
            f"p50 {ms(s.quantile(0.5))} ms; generator CPU {s.client_cpu / s.seconds:.0%}",
        )
    s = clients["open"]
    base.add_row("load generator open loop @ 400/s vs a no-op server", f"{s.rate:,.0f} req/s",
                 f"p50 {ms(s.quantile(0.5))} / p99 {ms(s.quantile(0.99))} ms; send lag p99 "
                 f"{ms(s.lag_p99)} ms (the generator's latency floor)")  # fmt: skip
    base.add_row(
        "DecisionCreate.model_validate_json + prepare (in-process)",
        f"{validate:,.0f} decisions/s",
        "per core, no HTTP",
    )
    for r in sdk:
        base.add_row(
            f"SDK batch {r.batch}: seal (canonical JSON + SHA-256 + Ed25519)",
            f"{r.seal:,.0f} records/s",
            f"{r.records:,} records",
        )
        base.add_row(
            f"SDK batch {r.batch}: Genesis DB commit_events (embedded, 1 event/record)",
            f"{r.commit:,.0f} records/s",
            "SQLite, as the service opens it",
        )
        base.add_row(
            f"SDK batch {r.batch}: seal + commit_events",
            f"{r.seal_commit:,.0f} records/s",
            "ceiling (b)",
        )
        base.add_row(
            f"ledger.writer.record, batch {r.batch} (in-process, no HTTP)",
            f"{r.ledger:,.0f} decisions/s",
            f"the route's storage step; {r.ledger_decisions:,} decisions",
        )
    console.print(base)

    server = ", ".join(f"{name} {'loaded' if ok else 'NOT loaded'}" for name, ok in loaded.items())
    say("Notes:")
    say(f"  - real server: `decisiontrail serve` (uvicorn.run, loop/http 'auto'): {server}.")
    say(
        "  - no-store ceiling = the real app (create_app) and uvicorn call, its service state "
        "swapped after start-up for a copy whose ledger returns receipts without sealing or "
        "storing: it includes HTTP parsing, every middleware (tracing, access log, body limit), "
        "routing, JSON decoding, DecisionCreate validation, the dependencies (state, API-key "
        "auth, cached, scope), decisions.prepare, metrics and the receipt JSON; it excludes "
        "split_personal, seal (hash + sign), the Merkle tiles, the SapixDB writes and "
        "commit_events."
    )
    if grew <= 0:
        say("  - the no-store server's data directory did not grow during its run.")
    elif grew > 64 * 1024:
        say(
            f"  - WARNING: the no-store server's data directory grew by {grew:,} bytes during "
            "its run: something on the ingest path stores outside ledger.writer.record."
        )
    else:
        say(f"  - the no-store server's data directory grew by {grew:,} bytes during its run.")
    say(
        "  - CPU srv/gen: server process (all threads, and the worker processes it started) / "
        "load generator process, as a share of "
        "one core; the machine has two."
    )
    sizes = sorted({service[f"batch {b} x{n} clients"].body_bytes for b, n in BATCHES})
    say(
        f"  - single bodies ~{service['single @ 50/s'].body_bytes:,} B (850–1,040 B, varied); "
        f"batch bodies {', '.join(f'{s:,}' for s in sizes)} B (limit {BODY_LIMIT:,} B)."
    )


if __name__ == "__main__":
    sys.exit(main())
