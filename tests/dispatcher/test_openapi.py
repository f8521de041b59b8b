"""Every operation in the OpenAPI document describes its answer (dispatcher/http/models.py)."""

from __future__ import annotations

from fastapi.routing import APIRoute, iter_route_contexts

from dispatcher.http.app import create_app


def test_every_route_in_the_document_has_a_response_model() -> None:
    app = create_app("postgresql://unused")  # the pool opens on startup only
    routes = [c.route for c in iter_route_contexts(app.routes)
              if isinstance(c.route, APIRoute) and c.route.include_in_schema]
    assert len(routes) >= 35
    # a 204 (No Content) answers no body, so it has no model (RFC 9110 15.3.5)
    missing = sorted(f"{sorted(r.methods)[0]} {r.path}" for r in routes
                     if r.response_model is None and r.status_code != 204)
    assert not missing, f"give these routes a response model in dispatcher/http/models.py: " \
                        f"{missing}"
    doc = app.openapi()
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            ok = {k: v for k, v in op["responses"].items() if k.startswith("2")}
            assert ok, f"{method} {path} documents no 2xx answer"
            for status, answer in ok.items():
                if status == "204":
                    assert "content" not in answer, f"{method} {path}: a 204 has no body"
                    continue
                schema = answer["content"]["application/json"]["schema"]
                assert "$ref" in schema, f"{method} {path} {status} answers an untyped {schema}"
