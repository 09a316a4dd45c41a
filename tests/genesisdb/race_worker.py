"""Functions the race tests run in separate OS processes (spawned, so importable by name)."""

from __future__ import annotations

from typing import Any

from genesisdb.engine import Engine
from genesisdb.exceptions import PreconditionFailedError


def commit_guarded(url: str, subject: str, barrier: Any, results: Any) -> None:
    """One commit guarded by isSubjectNew, started together with the other workers."""
    engine = None
    try:
        engine = Engine.open(url)
        barrier.wait(timeout=60)
        event = {"source": "race", "subject": subject, "type": "created", "data": {}}
        guard = {"type": "isSubjectNew", "payload": {"subject": subject}}
        engine.commit([event], [guard])
        results.put("ok")
    except PreconditionFailedError:
        results.put("412")
    except Exception as exc:  # the test reports anything else
        results.put(f"{type(exc).__name__}: {exc}")
    finally:
        if engine is not None:
            engine.close()


def commit_many(url: str, subject: str, count: int, barrier: Any, results: Any) -> None:
    """``count`` unguarded single-event commits, racing the other workers."""
    engine = None
    try:
        engine = Engine.open(url)
        barrier.wait(timeout=60)
        for n in range(count):
            engine.commit([{"source": "race", "subject": subject, "type": "n", "data": {"n": n}}])
        results.put("ok")
    except Exception as exc:
        results.put(f"{type(exc).__name__}: {exc}")
    finally:
        if engine is not None:
            engine.close()
