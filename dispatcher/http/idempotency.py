"""Idempotency-Key: a retried request (a tap on a bad connection) gets the first answer.

The key is scoped to the caller's token; the request it was first used for is kept with
the answer, so reusing a key for another request is refused instead of answered wrongly.
"""

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import HTTPException
from psycopg.types.json import Jsonb

from dispatcher.store.tokens import Principal


def once_per_key(conn: Any, who: Principal, key: str | None, what: dict[str, Any],
                 act: Callable[[datetime], dict[str, Any]]) -> dict[str, Any]:
    """Run `act` once per (token, Idempotency-Key) in one transaction; a replay of the same
    request returns the stored answer, a reuse for another request is a 422."""
    now = datetime.now(UTC)
    request = json.dumps(what, sort_keys=True)
    with conn.transaction():
        if key:
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{who.token_id}:{key}",))
            old = conn.execute("SELECT request, response FROM idempotency_keys"
                               " WHERE token_id = %s AND key = %s", (who.token_id, key)).fetchone()
            if old is not None:
                if old["request"] != request:
                    raise HTTPException(422, "this Idempotency-Key was already used for another "
                                             "request; send a new key for each new action")
                stored: dict[str, Any] = old["response"]
                return stored
        result = act(now)
        if key:
            conn.execute("INSERT INTO idempotency_keys (token_id, key, request, status_code,"
                         " response) VALUES (%s, %s, %s, 200, %s)",
                         (who.token_id, key, request, Jsonb(result)))
    return result
