"""What every route depends on: a database connection from the pool and the caller.

The caller is a bearer token in ``Authorization`` (machines) or the session cookie (people
signed in by a link); never a secret in the URL. A state-changing request that carries the
cookie must come from our own origin (``Origin``), so another site cannot act for a
signed-in person. Wrong credentials count against the client (dispatcher/http/guard.py).

Each route module exposes ``router(deps) -> APIRouter``; the app builds one Deps around
its pool and includes every router (dispatcher/http/app.py).
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlparse

import psycopg
from fastapi import Depends, Header, HTTPException, Query, Request
from psycopg_pool import ConnectionPool

from dispatcher.http.guard import Guard
from dispatcher.store import auth, tokens
from dispatcher.store.tokens import Principal
from hourglass.config import AuthConfig

DictConn = psycopg.Connection[dict[str, Any]]
MAX_PAGE = 200  # list pages are bounded so one request cannot read the whole table
MAX_ID = 2**63 - 1  # ids and cursors are bigint: a larger one finds nothing, answered 422
#: A list's cursor: the id the next page starts below.
Cursor = Annotated[int | None, Query(ge=1, le=MAX_ID)]
#: A list's page size.
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
COOKIE = "hg_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Deps:
    """The app's dependencies as route annotations: ``conn: deps.db, who: deps.who``."""

    pool: ConnectionPool[DictConn]
    db: Any  # Annotated[DictConn, Depends(...)]: a connection for the request
    who: Any  # Annotated[Principal, Depends(...)]: the caller, or a 401
    auth: AuthConfig
    guard: Guard
    # notify.local_webhooks: a customer may name an http:// webhook on this machine (tests,
    # a demo, a relay on the host); otherwise customers' webhooks must be https
    local_webhooks: bool = False

    def base_url(self, request: Request) -> str:
        """Where people reach the pages (the configured public URL, else this request's)."""
        return (self.auth.public_url or f"{request.url.scheme}://{request.url.netloc}"
                ).rstrip("/")

    def same_origin(self, request: Request) -> bool:
        """Whether the request's Origin is ours (a missing Origin is not)."""
        origin = request.headers.get("origin")
        if not origin:
            return False
        want, got = urlparse(self.base_url(request)), urlparse(origin)
        return (got.scheme, got.netloc) == (want.scheme, want.netloc)


def client_of(request: Request) -> str:
    """The caller's address, as the rate limits and the audit know it."""
    return request.client.host if request.client else "unknown"


def make(pool: ConnectionPool[DictConn], config: AuthConfig | None = None,
         guard: Guard | None = None, local_webhooks: bool = False) -> Deps:
    """Dependencies around one connection pool."""
    config = config or AuthConfig()
    guard = guard or Guard(config.failures_per_minute, config.signin_requests_per_hour)

    def db() -> Iterator[DictConn]:
        with pool.connection() as conn:
            yield conn

    Db = Annotated[DictConn, Depends(db)]

    def principal(request: Request, conn: Db,
                  authorization: Annotated[str | None, Header()] = None) -> Principal:
        client, now = client_of(request), datetime.now(UTC)
        guard.check(client)
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise HTTPException(401, "use 'Authorization: Bearer <token>'")
            who = tokens.lookup(conn, token.strip(), now)
            if who is None:
                guard.failed(client)
                auth.audit(conn, "token_refused", now, client=client,
                           path=request.url.path)
                raise HTTPException(401, "unknown, expired or revoked token: ask an admin "
                                         "for a new one (hourglass token create)")
            return who
        cookie = request.cookies.get(COOKIE)
        if cookie:
            who = tokens.lookup(conn, cookie, now, session=True)
            if who is None:
                guard.failed(client)
                auth.audit(conn, "session_refused", now, client=client,
                           path=request.url.path)
                raise HTTPException(401, "your session has ended (signed out, expired or "
                                         "revoked): sign in again at /signin")
            if request.method not in SAFE_METHODS and not deps.same_origin(request):
                raise HTTPException(403, "refused: a change made with the session cookie must "
                                         "come from this site's own pages (Origin "
                                         f"{request.headers.get('origin') or 'missing'})")
            return who
        raise HTTPException(401, "not signed in: sign in at /signin (people), or send "
                                 "'Authorization: Bearer <token>' (machines; `hourglass "
                                 "token create` makes one)")

    deps = Deps(pool, Db, Annotated[Principal, Depends(principal)], config, guard,
                local_webhooks)
    return deps
