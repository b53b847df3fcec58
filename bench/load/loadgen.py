"""A closed-loop HTTP load generator: N clients, each sending its next request as soon as the
previous answer is in. Standard library only (asyncio streams, HTTP/1.1), so it runs in any venv
and costs little CPU next to the servers it measures on the same machine.

Each client draws its requests from its own iterator of ``Request``; a warm-up period is run and
discarded, then ``seconds`` are measured (requests that complete inside the window). Two
connection modes: ``keepalive`` (one persistent connection per client) and ``new`` (a new TCP
connection per request, ``Connection: close``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    key: object = None  # what the caller wants back with the answer (e.g. (item, labeler))


@dataclass
class Answer:
    key: object
    status: int
    body: bytes
    started: float
    latency: float


@dataclass
class Result:
    clients: int
    mode: str
    warmup: float
    seconds: float
    answers: list[Answer] = field(default_factory=list)
    exhausted: int = 0  # clients that ran out of requests before the end
    errors: list[str] = field(default_factory=list)
    window: tuple[float, float] = (0.0, 0.0)

    def measured(self) -> list[Answer]:
        start, end = self.window
        return [a for a in self.answers if start <= a.started + a.latency <= end]

    def summary(self) -> dict[str, object]:
        measured = self.measured()
        latencies = sorted(a.latency for a in measured)
        ok = [a for a in measured if 200 <= a.status < 300]
        bad = [a for a in measured if not 200 <= a.status < 300]

        def pct(p: float) -> float | None:
            if not latencies:
                return None
            return round(1000 * latencies[min(len(latencies) - 1, int(p * len(latencies)))], 1)

        statuses: dict[str, int] = {}
        for a in bad:
            statuses[str(a.status)] = statuses.get(str(a.status), 0) + 1
        return {
            "clients": self.clients,
            "mode": self.mode,
            "seconds": self.seconds,
            "requests": len(measured),
            "ok": len(ok),
            "rps": round(len(ok) / self.seconds, 1),
            "p50_ms": pct(0.50),
            "p95_ms": pct(0.95),
            "p99_ms": pct(0.99),
            "max_ms": round(1000 * latencies[-1], 1) if latencies else None,
            "errors": len(bad) + len(self.errors),
            "error_statuses": statuses,
            "connection_errors": self.errors[:5],
            "exhausted_clients": self.exhausted,
        }


def _encode(request: Request, host: str, keepalive: bool) -> bytes:
    lines = [f"{request.method} {request.path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in request.headers.items()]
    lines.append(f"Content-Length: {len(request.body)}")
    lines.append("Connection: keep-alive" if keepalive else "Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + request.body


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            parts.append(chunk[:-2])
        body = b"".join(parts)
    else:
        body = await reader.read()
    closes = headers.get("connection", "").lower() == "close"
    return status, body, closes


async def _client(
    host: str,
    port: int,
    requests: Iterator[Request],
    keepalive: bool,
    deadline: float,
    result: Result,
) -> None:
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    while time.perf_counter() < deadline:
        request = next(requests, None)
        if request is None:
            result.exhausted += 1
            break
        started = time.perf_counter()
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            assert reader is not None
            writer.write(_encode(request, f"{host}:{port}", keepalive))
            status, body, closes = await _read_answer(reader)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            result.errors.append(f"{type(exc).__name__}: {exc}")
            if writer is not None:
                writer.close()
            reader = writer = None
            await asyncio.sleep(0.05)
            continue
        result.answers.append(
            Answer(request.key, status, body, started, time.perf_counter() - started)
        )
        if closes or not keepalive:
            writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


async def _run(
    host: str,
    port: int,
    make_requests: Callable[[int], Iterator[Request]],
    clients: int,
    warmup: float,
    seconds: float,
    keepalive: bool,
    on_window: Callable[[str], None] | None,
) -> Result:
    result = Result(clients, "keepalive" if keepalive else "new", warmup, seconds)
    start = time.perf_counter()
    deadline = start + warmup + seconds
    result.window = (start + warmup, deadline)

    async def marks() -> None:
        await asyncio.sleep(warmup)
        if on_window:
            on_window("start")
        await asyncio.sleep(seconds)
        if on_window:
            on_window("end")

    tasks = [
        asyncio.create_task(_client(host, port, make_requests(c), keepalive, deadline, result))
        for c in range(clients)
    ]
    await asyncio.gather(marks(), *tasks)
    return result


def run(
    host: str,
    port: int,
    make_requests: Callable[[int], Iterator[Request]],
    *,
    clients: int,
    warmup: float,
    seconds: float,
    keepalive: bool,
    on_window: Callable[[str], None] | None = None,
) -> Result:
    """Run the closed loop; ``on_window("start"|"end")`` is called at the measured window's edges
    (the caller samples CPU time there)."""
    return asyncio.run(
        _run(host, port, make_requests, clients, warmup, seconds, keepalive, on_window)
    )


def json_body(data: object) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()
