"""ASGI middleware in front of the API: body size, UTF-8 and nesting limits, and the API key."""

from __future__ import annotations

import hmac
from collections.abc import Callable

from fastapi.responses import JSONResponse

from ..settings import Settings


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _json_depth_exceeds(body: bytes, limit: int) -> bool:
    depth, in_string, escaped = 0, False, False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return False


class GuardMiddleware:
    """Rejects over-large, non-UTF-8 and too deeply nested bodies before parsing, and checks the API key."""

    OPEN_PATHS = frozenset({"/health", "/", "/review"})  # the pages ask for the key and send it themselves

    def __init__(self, app: Callable, settings: Settings) -> None:
        self.app, self.settings = app, settings

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        s = self.settings

        async def reject(status: int, code: str, message: str) -> None:
            await error_response(status, code, message)(scope, receive, send)

        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if s.api_key and scope["path"] not in self.OPEN_PATHS and scope.get("method") != "OPTIONS":
            given = headers.get("x-api-key") or ""
            auth = headers.get("authorization", "")
            if auth[:7].lower() == "bearer ":
                given = auth[7:].strip()
            if not hmac.compare_digest(given.encode(), s.api_key.encode()):
                await reject(401, "unauthorized", "missing or wrong API key (Authorization: Bearer … or "
                             "X-API-Key)")
                return
        too_large = f"request body over {s.max_body_bytes} bytes"
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > s.max_body_bytes:
            await reject(413, "body_too_large", too_large)
            return
        if scope.get("method") not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > s.max_body_bytes:
                await reject(413, "body_too_large", too_large)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            await reject(400, "invalid_utf8", f"request body is not UTF-8 (byte {exc.start}: {exc.reason})")
            return
        if _json_depth_exceeds(body, s.max_json_depth):
            await reject(400, "too_deep", f"JSON nested deeper than {s.max_json_depth} levels")
            return
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)
