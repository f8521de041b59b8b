"""Loads the MQTT JSON Schemas in schemas/mqtt and validates payloads against them."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

KINDS = ("birth", "telemetry", "event", "state")
#: Commands to agents, on hg/v1/{site}/{host}/cmd/{command} (schemas/commands.py).
COMMANDS = ("resend",)
_BASE = "https://hourglass.invalid/schemas/mqtt/"


def _load(name: str) -> dict[str, Any]:
    """Read one schema file shipped in the package."""
    text = resources.files("schemas").joinpath("mqtt", name).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@cache
def validators() -> dict[str, Draft202012Validator]:
    """One validator per message kind, built once."""
    registry: Registry[Any] = Registry()
    for name in ("envelope.json", *(f"{k}.json" for k in (*KINDS, *COMMANDS))):
        registry = registry.with_resource(_BASE + name, Resource.from_contents(_load(name)))
    return {
        kind: Draft202012Validator(
            _load(f"{kind}.json"), registry=registry, format_checker=FormatChecker()
        )
        for kind in (*KINDS, *COMMANDS)
    }


def errors(kind: str, payload: Any) -> list[str]:
    """Return readable validation errors for a payload of the given kind (empty if valid)."""
    validator = validators().get(kind) if kind in KINDS else None
    if validator is None:
        return [f"unknown message kind {kind!r}; expected one of {', '.join(KINDS)}"]
    out = []
    for err in sorted(validator.iter_errors(payload), key=lambda e: list(e.absolute_path)):
        where = "/".join(str(p) for p in err.absolute_path) or "(root)"
        out.append(f"{where}: {err.message}")
    return out


def command_errors(command: str, payload: Any) -> list[str]:
    """Readable validation errors of a command to an agent (empty if valid)."""
    if command not in COMMANDS:
        return [f"unknown command {command!r}; expected one of {', '.join(COMMANDS)}"]
    validator = validators()[command]
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
            for e in sorted(validator.iter_errors(payload), key=lambda e: list(e.absolute_path))]
