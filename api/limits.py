"""Request limits, before any route runs: header size (431), body size (413), body time (408).

The body is read here, whole and bounded, and handed to the app again; routes find it in
`request.state.body`. Slow request *headers* are cut off by the server protocol (api/server.py).
"""

from __future__ import annotations

import asyncio
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class RequestLimits:
    def __init__(
        self, app: ASGIApp, *, max_header_bytes: int, max_body_bytes: int, body_timeout: float
    ) -> None:
        self.app = app
        self.max_header_bytes = max_header_bytes
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header_bytes = sum(len(k) + len(v) + 4 for k, v in scope["headers"])
        if header_bytes > self.max_header_bytes:
            await _refuse(
                send, 431, "headers_too_large", f"request headers exceed {self.max_header_bytes} bytes"
            )
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            await _refuse(
                send, 413, "body_too_large", f"the request body exceeds {self.max_body_bytes} bytes"
            )
            return
        try:
            body = await asyncio.wait_for(self._read(receive), self.body_timeout)
        except TimeoutError:
            await _refuse(
                send, 408, "request_timeout", f"the body did not arrive within {self.body_timeout} s"
            )
            return
        except _TooLarge:
            await _refuse(
                send, 413, "body_too_large", f"the request body exceeds {self.max_body_bytes} bytes"
            )
            return
        if body is None:
            return  # the client went away
        scope.setdefault("state", {})["body"] = body
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _read(self, receive: Receive) -> bytes | None:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


class _TooLarge(Exception):
    pass


async def _refuse(send: Send, status: int, reason: str, message: str) -> None:
    body = json.dumps({"error": "request rejected", "reason": reason, "message": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
