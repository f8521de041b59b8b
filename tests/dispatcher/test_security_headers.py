"""The security-headers middleware on its own, around a small Starlette app: the answers the
dispatcher's routes cannot easily be made to give (an unhandled exception, a route's own
policy). The dispatcher's real answers are in tests/web/test_security.py."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from dispatcher.http.security import POLICY, SecurityHeaders


async def boom(request: Request) -> Response:
    raise RuntimeError("a bug")


async def own(request: Request) -> Response:
    return PlainTextResponse("x", headers={"Content-Security-Policy": "sandbox",
                                           "Cache-Control": "max-age=60"})


async def chunks(request: Request) -> Response:
    async def parts() -> AsyncIterator[str]:
        for n in range(3):
            yield f"part {n}\n"

    return StreamingResponse(parts(), media_type="text/plain")


def client() -> TestClient:
    """The middleware around three routes, as app.add_middleware wires it."""
    app = Starlette(routes=[Route("/boom", boom), Route("/own", own), Route("/chunks", chunks)])
    app.add_middleware(SecurityHeaders)
    return TestClient(app, raise_server_exceptions=False)


def test_an_unhandled_exception_answers_500_with_the_headers() -> None:
    r = client().get("/boom", headers={"Authorization": "Bearer x"})
    assert r.status_code == 500
    assert r.json() == {"detail": "internal error; it has been logged, try again"}
    assert r.headers["content-security-policy"] == POLICY
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-store"


def test_a_header_the_route_set_is_kept() -> None:
    r = client().get("/own", headers={"Cookie": "hg_session=s"})
    assert r.headers["content-security-policy"] == "sandbox"
    assert r.headers["cache-control"] == "max-age=60"
    assert r.headers["x-frame-options"] == "DENY"


def test_a_streamed_answer_passes_through_whole() -> None:
    r = client().get("/chunks")
    assert r.text == "part 0\npart 1\npart 2\n"
    assert r.headers["content-security-policy"] == POLICY
    assert "cache-control" not in r.headers  # anonymous
