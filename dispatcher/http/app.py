"""The dispatcher's FastAPI app: one connection pool, the error answers, and the routers.

Every resource's routes live in dispatcher/http/routes/ (one module each, ``router(deps)``),
every answer's shape in dispatcher/http/models.py.
"""

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from dispatcher.http import deps as dependencies
from dispatcher.http import models
from dispatcher.http.deps import MAX_ID, DictConn
from dispatcher.http.routes import (
    board,
    cage,
    claims,
    contacts,
    credits,
    escalations,
    facility,
    figures,
    health,
    incidents,
    ingest,
    jobcard,
    jobs,
    notifications,
    oidc,
    pages,
    passkeys,
    pauses,
    planned_work,
    proactive,
    push,
    pwa,
    readings,
    reviews,
    signin,
    spares,
)
from dispatcher.http.security import SecurityHeaders
from hourglass.config import AuthConfig, PushConfig

# oidc and passkeys before signin: /signin/{code} would take /signin/oidc and /signin/passkey
ROUTERS = (incidents, readings, cage, contacts, jobs, jobcard, pauses, claims, reviews, spares,
           credits, facility, ingest, notifications, proactive, planned_work, board, figures,
           pages, pwa, oidc, passkeys, signin, push, escalations)


def create_app(database_url: str, engine_alive: Callable[[], bool] | None = None,
               auth: AuthConfig | None = None, local_webhooks: bool = False,
               serials: Mapping[str, str] | None = None,
               push: PushConfig | None = None) -> FastAPI:
    """Build the app around one connection pool (opened on startup, closed on shutdown)."""
    # check: a connection the database dropped (a restart, a crash) is replaced when it is
    # taken, not handed to a request that then fails with a 500 (bench/chaos found one)
    pool: ConnectionPool[DictConn] = ConnectionPool(
        database_url, open=False, min_size=1, max_size=8,
        kwargs={"autocommit": True, "row_factory": dict_row},
        check=ConnectionPool.check_connection,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool.open()
        yield
        pool.close()

    app = FastAPI(title="Hourglass", version="1", lifespan=lifespan,
                  description="Hardware fixed within one hour, or it's free.")
    app.add_middleware(SecurityHeaders)  # the security headers on every answer

    @app.exception_handler(psycopg.OperationalError)
    async def database_down(request: Request, exc: psycopg.OperationalError) -> JSONResponse:
        return JSONResponse({"detail": "the database is unavailable right now; try again in a "
                                       "few seconds"}, status_code=503,
                            headers={"Retry-After": "5"})

    @app.exception_handler(psycopg.DataError)
    async def bad_value(request: Request, exc: psycopg.DataError) -> JSONResponse:
        # a value the database cannot hold: an id past bigint, a NUL byte in a text
        # (schemathesis found both as 500s)
        if isinstance(exc, psycopg.errors.NumericValueOutOfRange):
            what = f"a number is out of range: ids and cursors go up to {MAX_ID}"
        elif "NUL" in str(exc):
            what = "a text holds a NUL byte (\\x00): remove it"
        else:
            what = "a value cannot be stored as given: check its type and length"
        return JSONResponse({"detail": f"bad request: {what}"}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = [f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors()]
        return JSONResponse({"detail": "bad request: " + "; ".join(parts)}, status_code=422)

    deps = dependencies.make(pool, auth, local_webhooks=local_webhooks, serials=serials,
                             push=push)
    app.include_router(health.router(deps, engine_alive))
    for module in ROUTERS:
        app.include_router(module.router(deps), responses=models.ERRORS)
    return app
