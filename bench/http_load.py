"""A minimal HTTP/1.1 keep-alive load generator on asyncio streams.

httpx's async pool serialises badly at 32 concurrent requests (about 160 req/s here, against
650 req/s for one sequential client), which would measure the client, not the server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class Connection:
    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self.host = host
        self.port = port
        self.extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        if self.reader is None or self.writer is None:
            raise RuntimeError("open() the connection first")
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n{self.extra}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        chunked = False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "transfer-encoding" and "chunked" in value:
                chunked = True
        if chunked:
            data = b""
            while True:
                size = int((await self.reader.readline()).strip(), 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                data += chunk[:-2]
            return status, data
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def run_load(
    port: int,
    clients: int,
    seconds: float,
    next_request: Callable[[int, int], tuple[str, str, bytes]],
    headers: dict[str, str] | None = None,
) -> tuple[float, list[float]]:
    """`clients` connections send requests back to back for `seconds`; `next_request(client,
    n)` gives (method, path, body). Returns requests/s and each request's latency."""
    latencies: list[float] = []
    stop = time.monotonic() + seconds

    async def client(number: int) -> None:
        connection = Connection("127.0.0.1", port, headers or {})
        await connection.open()
        n = 0
        try:
            while time.monotonic() < stop:
                method, path, body = next_request(number, n)
                started = time.perf_counter()
                status, data = await connection.request(method, path, body)
                latencies.append(time.perf_counter() - started)
                if status >= 400:
                    raise RuntimeError(f"{method} {path}: {status} {data[:300]!r}")
                n += 1
        finally:
            connection.close()

    began = time.monotonic()
    await asyncio.gather(*(client(i) for i in range(clients)))
    return len(latencies) / (time.monotonic() - began), latencies
