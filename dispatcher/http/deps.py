"""What every route depends on: a database connection from the pool and the caller.

Each route module exposes ``router(deps) -> APIRouter``; the app builds one Deps around
its pool and includes every router (dispatcher/http/app.py).
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import psycopg
from fastapi import Depends, Header, HTTPException, Query
from psycopg_pool import ConnectionPool

from dispatcher.store.tokens import Principal, lookup

DictConn = psycopg.Connection[dict[str, Any]]
MAX_PAGE = 200  # list pages are bounded so one request cannot read the whole table


@dataclass(frozen=True)
class Deps:
    """The app's dependencies as route annotations: ``conn: deps.db, who: deps.who``."""

    pool: ConnectionPool[DictConn]
    db: Any  # Annotated[DictConn, Depends(...)]: a connection for the request
    who: Any  # Annotated[Principal, Depends(...)]: the caller, or a 401


def make(pool: ConnectionPool[DictConn]) -> Deps:
    """Dependencies around one connection pool."""

    def db() -> Iterator[DictConn]:
        with pool.connection() as conn:
            yield conn

    Db = Annotated[DictConn, Depends(db)]

    def principal(conn: Db, authorization: Annotated[str | None, Header()] = None,
                  access_token: Annotated[str | None, Query(include_in_schema=False)] = None,
                  ) -> Principal:
        token = access_token
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token:
                raise HTTPException(401, "use 'Authorization: Bearer <token>'")
        if not token:
            raise HTTPException(401, "missing token: send 'Authorization: Bearer <token>'; "
                                     "`hourglass token create` makes one")
        who = lookup(conn, token.strip())
        if who is None:
            raise HTTPException(401, "unknown token: ask an admin for a new one")
        return who

    return Deps(pool, Db, Annotated[Principal, Depends(principal)])
