"""A stand-in server on loopback, so the gateway can answer a request before its body arrives.

mitmproxy sends an answer an addon made only once it has read the request's whole body, unless
the body is streamed to a server: a 50 MB upload to a blocked site was read into memory before
the block page went out. So for an answer decided on the request head (the block page, the
proxy's own pages) the addon streams the body into nothing, towards this server, which answers
as soon as the head arrives; the addon puts its own answer in place of that one, and mitmproxy
sends it while the client is still uploading, dropping each piece of the body as it comes.

Plain asyncio: the addon starts it in the proxy's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib

ANSWER = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class Sink:
    """Answers each connection with `ANSWER` after the request head, then reads until EOF."""

    def __init__(self) -> None:
        self.address: tuple[str, int] | None = None
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._answer, "127.0.0.1", 0)
        self.address = self._server.sockets[0].getsockname()[:2]

    def close(self) -> None:
        if self._server is not None:
            self._server.close()

    @staticmethod
    async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            with contextlib.suppress(asyncio.LimitOverrunError):  # a head over 64 KiB: answer now
                await reader.readuntil(b"\r\n\r\n")
            writer.write(ANSWER)
            await writer.drain()
            while await reader.read(65536):
                pass  # the body, if any of it is sent here: dropped
        writer.close()
