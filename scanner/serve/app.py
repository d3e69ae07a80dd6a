"""The ASGI app of `facescan serve` (Starlette): the scan API, probes, metrics, the OpenAPI
schema and the review page.

| route | answer |
|---|---|
| `POST /v1/scan` | `{"results": [row, ...]}`: one JSONL report row per image, in upload order |
| `GET /healthz` | 200 while the process serves |
| `GET /readyz` | 200 with the model's description once it is loaded; 503 once shutting down |
| `GET /metrics` | Prometheus text |
| `GET /openapi.json` | the OpenAPI 3.1 schema |
| `GET /` | the review page (and its `/review.js`, `/review.css`) |

Every refusal is JSON, `{"error": message}`: 400 malformed, 401 no or wrong token, 404, 405,
413 too large, 415 wrong media type, 503 busy (with Retry-After). With tokens configured,
`/v1/scan` and `/metrics` need `Authorization: Bearer TOKEN`; probes, the schema and the page
(which holds no data) do not.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scanner.serve.metrics import CONTENT_TYPE, Metrics
from scanner.serve.openapi import schema
from scanner.serve.options import ServeOptions
from scanner.serve.service import ScanService
from scanner.serve.uploads import BodyLimits, HttpError, read_uploads

log = logging.getLogger("facescan.serve")
SCAN = "/v1/scan"
# The page loads its own script and style and talks to this origin only; thumbnails are blob:
# URLs of the files the browser already holds.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
ASSETS = {"/": "index.html", "/review.js": "review.js", "/review.css": "review.css"}
MEDIA_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}


def create_app(service: ScanService, options: ServeOptions) -> Starlette:
    """The app over a loaded `service`; its lifespan closes the service at shutdown."""
    tokens = options.tokens()
    limits = BodyLimits(options.max_request_bytes, options.max_files)
    metrics = Metrics(service)

    def authorize(request: Request) -> None:
        if tokens and not token_matches(request.headers.get("authorization", ""), tokens):
            raise HttpError(401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})

    async def scan(request: Request) -> Response:
        authorize(request)
        with service.admission.hold() as held:
            held.arrive()
            uploads = await read_uploads(
                request.headers.get("content-type"),
                request.headers.get("content-length"),
                request.stream(),
                request.query_params.get("name"),
                limits,
                held.take_bytes,
            )
            held.take_images(len(uploads))
            rows = await service.scan(uploads)
        metrics.count_rows(rows)
        return JSONResponse({"results": rows})

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "alive"})

    async def readyz(request: Request) -> Response:
        if service.closed:
            return JSONResponse({"status": "shutting down"}, 503)
        return JSONResponse({"status": "ready", "model": service.model})

    async def metrics_text(request: Request) -> Response:
        authorize(request)
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    async def openapi(request: Request) -> Response:
        return JSONResponse(schema())

    pages = {path: page_asset(name) for path, name in ASSETS.items()}

    async def page(request: Request) -> Response:
        body, media_type = pages[request.url.path]
        return Response(body, media_type=media_type, headers=PAGE_HEADERS)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        service.close()  # after the last request in flight has its answer

    routes = [
        Route(SCAN, scan, methods=["POST"]),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics_text),
        Route("/openapi.json", openapi),
        *(Route(path, page) for path in ASSETS),
    ]
    middleware = [Middleware(CountRequests, metrics=metrics, known={r.path for r in routes})]
    if options.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(options.cors_origins),
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type"],
            )
        )
    handlers: Any = {HttpError: refused, HTTPException: http_exception, Exception: internal}
    app = Starlette(
        routes=routes, middleware=middleware, exception_handlers=handlers, lifespan=lifespan
    )
    app.state.service = service  # for tests and embedding applications
    return app


def token_matches(header: str, tokens: list[bytes]) -> bool:
    """`Bearer TOKEN` naming one of `tokens`, compared in constant time (every token is
    compared, so the time does not say which one came close)."""
    scheme, _, given = header.partition(" ")
    candidate = given.strip().encode("utf-8", "surrogateescape")
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(candidate, token)
    return scheme.lower() == "bearer" and matched


def page_asset(name: str) -> tuple[bytes, str]:
    data = (resources.files("scanner.serve") / "page" / name).read_bytes()
    return data, MEDIA_TYPES[name[name.rindex(".") :]] + "; charset=utf-8"


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status, headers)


async def refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HttpError)
    if exc.logged:
        log.warning("%s %s from %s: %s", request.method, request.url.path, client(request), exc)
    return error(exc.status, exc.message, exc.headers)


def client(request: Request) -> str:
    """The client's address as HOST:PORT (as it reached this server: a proxy's, behind one)."""
    return "unknown" if request.client is None else f"{request.client.host}:{request.client.port}"


async def http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error(exc.status_code, exc.detail, dict(exc.headers or {}))


async def internal(request: Request, exc: Exception) -> Response:
    log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
    return error(500, f"internal error: {type(exc).__name__}")


class CountRequests:
    """Counts every answer by route and status, and times the scans (ASGI middleware: it sees
    the status of errors answered by the handlers too)."""

    def __init__(self, app: ASGIApp, metrics: Metrics, known: set[str]) -> None:
        self.app, self.metrics, self.known = app, metrics, known

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # what the server answers when the app raises past every handler
        started = time.perf_counter()

        async def note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, note_status)
        finally:
            route = scope["path"] if scope["path"] in self.known else "other"
            self.metrics.requests.labels(route, str(status)).inc()
            if route == SCAN:
                self.metrics.latency.observe(time.perf_counter() - started)
