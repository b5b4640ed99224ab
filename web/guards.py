"""What stands in front of the served app (web/server.py puts it there):

    BodyLimit       /v1 request bodies over settings.max_request_bytes get 413 before they are parsed
    PathCORS        CORS for settings.cors_origins on /v1 only (browser chat clients); Gradio keeps its own
    gradio_login()  with settings.api_key, Gradio's login (the key is the password) on the app's pages
                    and on its own API (/gradio_api/..., what gradio_client calls)
"""
from __future__ import annotations

import hmac
from collections import deque
from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_PREFIX = "/v1/"
LOGIN_MESSAGE = "此服务需要密钥：用户名任填，密码填 API 密钥（服务器的 POLICYQA_API_KEY）。"


class BodyLimit:
    """ASGI middleware: a request under `prefix` whose body is longer than `max_bytes` is answered with
    `refuse()` (a Response) without being read further. A declared Content-Length over the limit is refused
    before any of the body is read; a chunked body is read here, counting, and handed on once it is whole.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, refuse: Callable[[], object], prefix: str = API_PREFIX):
        self.app, self.max_bytes, self.refuse, self.prefix = app, max_bytes, refuse, prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            return await self.app(scope, receive, send)
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self.refuse()(scope, receive, send)
        received: deque[Message] = deque()
        size = 0
        while True:
            message = await receive()
            received.append(message)
            if message["type"] != "http.request":  # the client left: the app learns it on its first receive
                break
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                return await self.refuse()(scope, receive, send)
            if not message.get("more_body", False):
                break

        async def replay() -> Message:  # the body as it came, then whatever follows (a disconnect)
            return received.popleft() if received else await receive()

        await self.app(scope, replay, send)


class PathCORS:
    """ASGI middleware: Starlette's CORSMiddleware for the paths under `prefix` only.

    Any header may be sent (the openai SDK adds its own x-stainless-* ones) and no cookies are involved
    (the key is a bearer header). A page on the internet may call a server on localhost or the LAN
    (Chrome's Private Network Access asks for that in its preflight). Gradio's paths keep Gradio's own
    policy: it stands aside only when the parent app adds CORSMiddleware itself, which this is not.
    """

    def __init__(self, app: ASGIApp, origins: list[str], prefix: str = API_PREFIX):
        self.app, self.prefix = app, prefix
        self.cors = CORSMiddleware(app, allow_origins=origins, allow_methods=["GET", "POST"], allow_headers=["*"],
                                   allow_private_network=True, max_age=600)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefix):
            return await self.cors(scope, receive, send)
        return await self.app(scope, receive, send)


def gradio_login(settings) -> dict:
    """mount_gradio_app / Blocks.launch options: with settings.api_key, Gradio's own login, whose password
    is the key (any user name), guards the pages and every Gradio API route; without a key, nothing."""
    key = settings.api_key
    if not key:
        return {}

    def check(username: str, password: str) -> bool:
        return hmac.compare_digest(password.encode(), key.encode())

    return {"auth": check, "auth_message": LOGIN_MESSAGE}
