"""The REST front's ASGI app: ``create_app(backend, auth)``.

Routes are those of commissaire-http's API v0 (section "The REST front" of the
README lists them), under ``/api/v0/``; the status page is at ``/`` and the
OpenAPI docs at ``/docs`` (Swagger UI, its files served from here: the docs
work without internet access). Every path, the docs included, is behind
authentication (:mod:`.auth`). Every error answer is JSON (:mod:`.errors`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..errors import CommissaireTasksError
from .auth import AuthManager, AuthMiddleware
from .backend import Backend
from .clusters import router as clusters_router
from .errors import as_api_error, error_body
from .hosts import router as hosts_router
from .named_records import router as records_router
from .operations import router as operations_router
from .status_page import router as status_router

__all__ = ["API_PREFIX", "create_app"]

logger = logging.getLogger(__name__)

#: Where the API routes live.
API_PREFIX = "/api/v0"

_STARLETTE_CODES = {404: "not_found", 405: "method_not_allowed"}


def create_app(backend: Backend | None = None, auth: AuthManager | None = None) -> FastAPI:
    """The app, calling services through ``backend`` and authenticating with ``auth``.

    Args:
        backend: The bus and storage client (the environment's default app when None).
        auth: The authentication plugins; required: ``AuthManager.disabled()`` turns it off.
    """
    if auth is None:
        raise TypeError("create_app needs auth= (AuthManager.disabled() to serve without it)")
    backend = backend if backend is not None else Backend()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await auth.close()

    app = FastAPIOffline(  # FastAPI, with the docs' scripts served by this server, not a CDN
        static_url="/docs-assets",
        redoc_url=None,
        title="Commissaire REST API",
        version=__version__,
        description="Commissaire's HTTP API v0, calling the services over the bus.",
        lifespan=lifespan,
        redirect_slashes=False,
    )
    app.state.backend = backend
    app.state.auth = auth
    for router in (hosts_router, clusters_router, operations_router, records_router):
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(status_router)
    app.add_middleware(AuthMiddleware, manager=auth)
    _add_error_handlers(app)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CommissaireTasksError)
    async def known(request: Request, exc: CommissaireTasksError) -> JSONResponse:
        error = as_api_error(exc)
        if error is None:
            return await unexpected(request, exc)
        body = error_body(error.status, error.message, error.details, error.jsonrpc_code)
        return JSONResponse(body, status_code=error.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # The offending input is left out: it may be a private key.
        details = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return JSONResponse(error_body(400, "invalid request", details), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        body: dict[str, Any] = error_body(exc.status_code, str(exc.detail))
        body["error"]["code"] = _STARLETTE_CODES.get(exc.status_code, body["error"]["code"])
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.error("%s %s failed: %s", request.method, request.url.path, exc, exc_info=exc)
        body = error_body(500, f"internal error ({type(exc).__name__}); see the server's log")
        return JSONResponse(body, status_code=500)
