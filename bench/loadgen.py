"""A cheap HTTP/1.1 load generator for loopback benchmarks: asyncio protocols, keep-alive, one thread.

The benchmarked servers share two cores with this client, so every microsecond it spends is taken
from them: requests are pre-encoded bytes, responses are parsed only as far as the status line and
Content-Length, and no HTTP library sits in between. It costs roughly 30-60 us of CPU per request here
(the benchmark prints the figure), a tenth of what a thread per client with http.client costs.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

HEADER_END = b"\r\n\r\n"


@dataclass
class Tally:
    """What one burst observed: latency per completed request, errors, and the status codes seen."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)


def post_request(path: str, body: bytes, host: str = "127.0.0.1") -> bytes:
    """A keep-alive POST of a JSON body, encoded once and sent as it is for every request."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    )
    return head.encode() + body


def parse_head(head: bytes) -> tuple[int, int, bool]:
    """(status, content length, server closes) from a response head; ValueError when it is not HTTP/1.x."""
    lines = head.split(b"\r\n")
    version, status, *_ = lines[0].split(b" ", 2)
    if not version.startswith(b"HTTP/1."):
        raise ValueError(f"not an HTTP/1.x response: {lines[0][:80]!r}")
    length, closes = 0, version == b"HTTP/1.0"
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection":
            closes = value.strip().lower() == b"close"
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            raise ValueError("chunked responses are not supported by this load generator")
    return int(status), length, closes


class _Client(asyncio.Protocol):
    """One connection that sends the request again as soon as the previous response is complete."""

    def __init__(self, request: bytes, tally: Tally, quota: int, stop_at: float, done: asyncio.Future[None]):
        self.request, self.tally, self.quota, self.stop_at, self.done = request, tally, quota, stop_at, done
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.started = 0.0
        self.sent = 0
        self.reconnect = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        if self.sent >= self.quota or time.monotonic() >= self.stop_at:
            self.transport.close()
            return
        self.sent += 1
        self.started = time.perf_counter()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(HEADER_END)
        if end < 0:
            return
        try:
            status, length, closes = parse_head(bytes(self.buffer[:end]))
        except ValueError:
            self._fail()
            return
        if len(self.buffer) < end + 4 + length:
            return
        self.tally.latencies_ms.append((time.perf_counter() - self.started) * 1000)
        self.tally.statuses[status] = self.tally.statuses.get(status, 0) + 1
        if status != 200:
            self.tally.errors += 1
        del self.buffer[: end + 4 + length]
        if closes:
            # A server that closes after each response (gunicorn's sync worker) gets a new connection.
            self.reconnect = True
            assert self.transport is not None
            self.transport.close()
            return
        self._send()

    def _fail(self) -> None:
        self.tally.errors += 1
        self.buffer.clear()
        assert self.transport is not None
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.buffer or (exc is not None and not self.reconnect):
            self.tally.errors += 1
        if not self.done.done():
            self.done.set_result(None)


async def _client(
    port: int, request: bytes, tally: Tally, quota: int, stop_at: float, host: str = "127.0.0.1"
) -> None:
    loop = asyncio.get_running_loop()
    remaining = quota
    while remaining > 0 and time.monotonic() < stop_at:
        done: asyncio.Future[None] = loop.create_future()
        try:
            _, protocol = await loop.create_connection(
                lambda: _Client(request, tally, remaining, stop_at, done), host, port
            )
        except OSError:
            tally.errors += 1
            await asyncio.sleep(0.05)
            continue
        await done
        remaining -= protocol.sent
        if not protocol.reconnect:
            return


async def _burst(port: int, request: bytes, clients: int, total: int, max_seconds: float) -> Tally:
    tally = Tally()
    stop_at = time.monotonic() + max_seconds
    quota = max(1, total // clients)
    await asyncio.gather(*(_client(port, request, tally, quota, stop_at) for _ in range(clients)))
    return tally


def burst(port: int, request: bytes, clients: int, total: int, max_seconds: float) -> Tally:
    """`clients` keep-alive connections sending `total` requests between them, or until max_seconds."""
    return asyncio.run(_burst(port, request, clients, total, max_seconds))
