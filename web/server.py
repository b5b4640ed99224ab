"""One server, one port: the Gradio app at `/` and the OpenAI-compatible API at `/v1` (web/api.py),
behind web/guards.py (the /v1 body limit and CORS; with an API key, Gradio's login).

    python app.py   ->  serve(load, settings): uvicorn on settings.host:settings.port (127.0.0.1:7860)

The server answers at once, while `load()` opens the index in a thread (building or repairing it
on first start can take minutes): until it is ready every request gets 503, in OpenAI's error
shape under /v1 and as a page that reloads itself elsewhere. Then create_server(app) takes over.
"""
from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator

import gradio as gr
import uvicorn
from fastapi import FastAPI
from starlette.responses import HTMLResponse, PlainTextResponse

from index.errors import PolicyQAError
from index.settings import Settings
from web.api import install_api, loading_error, too_large_error
from web.assets import CSS
from web.guards import BodyLimit, PathCORS, gradio_login

LOADING_PAGE = ('<!doctype html><html lang="zh"><head><meta charset="utf-8"><meta http-equiv="refresh" content="3">'
                '<title>PolicyQA 政策问答</title></head><body style="font-family:sans-serif;margin:3em">'
                '<h2>PolicyQA 政策问答</h2><p>正在加载索引（首次启动时会先建立索引），页面会自动刷新。</p></body></html>')


def gradio_options(ui) -> dict:
    """How the Blocks are served (the same for Blocks.launch and mount_gradio_app): the page's CSS, no
    server-side rendering, no files outside Gradio's own, the upload limit, and with an API key the login."""
    return dict(css=CSS, ssr_mode=False, allowed_paths=[], blocked_paths=ui.blocked_paths(),
                max_file_size=ui.settings.max_upload_bytes, show_error=True, footer_links=["api"],
                **gradio_login(ui.settings))


def create_server(ui) -> FastAPI:
    """The FastAPI app for a PolicyQAApp: the API at /v1 (schema at /openapi.json, docs at /docs),
    the Gradio Blocks at / (built here unless `ui.create_app()` already built them); /v1 bodies are
    limited, and CORS is on for /v1 when settings.cors_origins names origins."""
    app = FastAPI(title="PolicyQA API", version="1", redoc_url=None,
                  description="OpenAI-compatible answers from the indexed policy documents, each sentence citing "
                              "its clause. Standard clients read `choices`; PolicyQA's own fields (`citations`, "
                              "`outcome`, ...) come beside them.")
    install_api(app, ui)  # before the mount: Gradio at "/" takes every path not routed before it
    settings = ui.settings
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes,
                       refuse=lambda: too_large_error(settings).response())
    if settings.cors_origin_list:  # added last, so outermost: a 413 or 401 carries the CORS headers too
        app.add_middleware(PathCORS, origins=settings.cors_origin_list)
    demo = ui.demo or ui.create_app()
    return gr.mount_gradio_app(app, demo, "/", server_name=ui.settings.host, server_port=ui.settings.port,
                               **gradio_options(ui))


class LoadingGate:
    """ASGI app that answers 503 until `load()` (run in a thread from startup) returns the PolicyQAApp,
    then passes everything to create_server(app), whose startup and shutdown it runs as well.

    If `load` raises, the error is kept in `error` and `on_error` is called (serve stops the server).
    `on_ready` is called once the app answers (its startup has run): serve prints that it is ready.
    """

    def __init__(self, load: Callable[[], object], on_error: Callable[[], None] = lambda: None,
                 on_ready: Callable[[], None] = lambda: None):
        self.load, self.on_error, self.on_ready = load, on_error, on_ready
        self.inner: FastAPI | None = None
        self.error: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self._inner_task: asyncio.Task | None = None

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            return await self._lifespan(scope, receive, send)
        if self.inner is not None:
            return await self.inner(scope, receive, send)
        if scope["type"] != "http":  # a websocket before the app exists: refuse it
            return await send({"type": "websocket.close", "code": 1013})
        if scope["path"].startswith("/v1/"):
            response = loading_error().response()
        elif scope["path"] == "/":
            response = HTMLResponse(LOADING_PAGE, status_code=503, headers={"Retry-After": "3"})
        else:
            response = PlainTextResponse("PolicyQA 正在加载索引，请稍后再试。", status_code=503,
                                         headers={"Retry-After": "3"})
        await response(scope, receive, send)

    async def _lifespan(self, scope, receive, send):
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                # a daemon thread, so that stopping the server during a long index build does not wait for it
                threading.Thread(target=self._open, args=(loop, scope), name="policyqa-load", daemon=True).start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self._stop.set()
                if self._inner_task is not None:
                    await self._inner_task
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _open(self, loop: asyncio.AbstractEventLoop, scope):
        try:
            app = create_server(self.load())
        except Exception as exc:  # kept and reported by serve(), which stops the server
            self.error = exc
            self.on_error()
            return
        if not loop.is_closed():
            loop.call_soon_threadsafe(self._start_inner, app)

    def _start_inner(self, app: FastAPI):
        self._inner_task = asyncio.get_running_loop().create_task(self._run_inner(app))

    async def _run_inner(self, app: FastAPI):
        # the inner app's lifespan (Gradio starts its queue here) is entered and left in this one task
        try:
            async with app.router.lifespan_context(app):
                self.inner = app
                self.on_ready()
                await self._stop.wait()
        except Exception as exc:  # its startup failed: kept and reported by serve(), which stops the server
            self.error = exc
            self.on_error()


def serve(load: Callable[[], object], settings: Settings, **uvicorn_options) -> int:
    """Serve on settings.host:settings.port until interrupted, loading the PolicyQAApp meanwhile;
    returns the exit code (a PolicyQAError's while loading)."""
    gate = LoadingGate(load)
    server = uvicorn.Server(uvicorn.Config(gate, host=settings.host, port=settings.port, log_level="warning",
                                           **uvicorn_options))
    gate.on_error = lambda: setattr(server, "should_exit", True)
    # the index's own lines come first; questions are answered from this line on
    gate.on_ready = lambda: print(f"PolicyQA: ready, answering at http://{settings.host}:{settings.port}/",
                                  file=sys.stderr, flush=True)
    print(f"PolicyQA: serving http://{settings.host}:{settings.port}/ (API: /v1, schema: /openapi.json)",
          file=sys.stderr)
    server.run()
    if isinstance(gate.error, PolicyQAError):
        print(f"error: {gate.error}", file=sys.stderr)
        return gate.error.exit_code
    if gate.error is not None:
        raise gate.error
    return 0


@contextlib.contextmanager
def serving(app, host: str = "127.0.0.1", port: int = 0, timeout_s: float = 60, **uvicorn_options) -> Iterator[str]:
    """Run an ASGI app under uvicorn in a background thread (tests, benchmarks); yields its URL
    ('http://127.0.0.1:54321/'). Port 0 takes a free one."""
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", **uvicorn_options))
    thread = threading.Thread(target=server.run, name="policyqa-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"uvicorn did not start serving on {host}:{port}")
        time.sleep(0.02)
    try:
        # the port uvicorn bound: asyncio turns Nagle off on the sockets it opens (one made here with proto 0
        # would keep it on, and every response would wait ~40 ms for a delayed ACK)
        yield f"http://{host}:{server.servers[0].sockets[0].getsockname()[1]}/"
    finally:
        server.should_exit = True
        thread.join(timeout_s)
