"""The fast decoder (collector.wire, msgspec) and the JSON Schema contract give one verdict."""

from __future__ import annotations

import copy
import json
from importlib import resources
from typing import Any

import pytest

from collector import wire
from schemas.mqtt_contract import errors

EXAMPLES = resources.files("schemas").joinpath("mqtt", "examples")
MISSING = object()


def example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(EXAMPLES.joinpath(name).read_text())
    return data


def verdicts(kind: str, body: Any) -> tuple[bool, bool]:
    """(JSON Schema accepts, msgspec accepts)."""
    return not errors(kind, body), wire.check(kind, json.dumps(body).encode()) is None


@pytest.mark.parametrize("entry", sorted(p.name for p in EXAMPLES.iterdir()))
def test_every_example_and_counter_example_gets_the_same_verdict(entry: str) -> None:
    kind = entry.split(".")[0].split("-")[0]
    schema_ok, fast_ok = verdicts(kind, example(entry))
    assert schema_ok == (".valid." in entry)
    assert fast_ok == schema_ok


def mutate(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of body with the dotted path set to value (or removed for MISSING)."""
    out = copy.deepcopy(body)
    *parents, last = path.split(".")
    node: Any = out
    for p in parents:
        node = node[int(p)] if isinstance(node, list) else node[p]
    if value is MISSING:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return out


MUTATIONS: list[tuple[str, str, Any]] = [
    # (example, path, value): each row is one way a payload can be right or wrong
    ("telemetry.valid.json", "readings.0.value", 7),
    ("telemetry.valid.json", "readings.0.value", True),
    ("telemetry.valid.json", "readings.0.value", None),
    ("telemetry.valid.json", "readings.0.extra", 1),
    ("telemetry.valid.json", "readings.0.component", "host:"),
    ("telemetry.valid.json", "readings.0.component", "disk:a/b"),
    ("telemetry.valid.json", "readings.0.metric", "Cpu.percent"),
    ("telemetry.valid.json", "readings.0.metric", "c" * 65),
    ("telemetry.valid.json", "readings.0.metric", MISSING),
    ("telemetry.valid.json", "components.0.status", "broken"),
    ("telemetry.valid.json", "components.0.kind", "toaster"),
    ("telemetry.valid.json", "components.0.id", "disk"),
    ("telemetry.valid.json", "components.0.slot", "s" * 129),
    ("telemetry.valid.json", "components.0.slot", None),
    ("telemetry.valid.json", "components.0.failure", "Bad-Slug"),
    ("telemetry.valid.json", "components.0.failure", "smart_failed"),
    ("telemetry.valid.json", "components.0.detail", "d" * 1025),
    ("telemetry.valid.json", "components.0.extra", "x"),
    ("telemetry.valid.json", "interval_s", 0),
    ("telemetry.valid.json", "interval_s", 86_400),
    ("telemetry.valid.json", "interval_s", 86_401),
    ("telemetry.valid.json", "readings", MISSING),
    ("telemetry.valid.json", "unknown_top_level", {"ok": True}),
    ("telemetry.valid.json", "seq", 0),
    ("telemetry.valid.json", "seq", 9_007_199_254_740_991),
    ("telemetry.valid.json", "seq", 9_007_199_254_740_992),
    ("telemetry.valid.json", "seq", "3"),
    ("telemetry.valid.json", "v", 2),
    ("telemetry.valid.json", "kind", "birth"),
    ("telemetry.valid.json", "host", "web 01"),
    ("telemetry.valid.json", "host", "-web"),
    ("telemetry.valid.json", "site", "s" * 64),
    ("telemetry.valid.json", "ts", "2026-11-23T09:00:30.123456Z"),
    ("telemetry.valid.json", "ts", "2026-11-23 09:00:30Z"),
    ("telemetry.valid.json", "ts", "2026-11-23T09:00:30"),
    ("birth.valid.json", "chassis.extra", "x"),
    ("birth.valid.json", "chassis.vendor", None),
    ("birth.valid.json", "components.0.size_bytes", -1),
    ("birth.valid.json", "components.0.attrs", []),
    ("birth.valid.json", "components.0.model", "m" * 257),
    ("birth.valid.json", "agent_version", ""),
    ("birth.valid.json", "session", ""),
    ("birth.valid.json", "session", "abc"),
    ("birth.valid.json", "boot_id", MISSING),
    ("event.valid.json", "failure", None),
    ("event.valid.json", "status", "ok"),
    ("event.valid.json", "evidence", []),
    ("event.valid.json", "detected_at", "yesterday"),
    ("event.valid.json", "component_kind", "toaster"),
    ("state.valid.json", "state", "maybe"),
    ("state.valid.json", "reason", "lost"),
    ("state.valid.json", "reason", "boom"),
    ("state.valid.json", "session", "s" * 65),
]


@pytest.mark.parametrize(("name", "path", "value"), MUTATIONS)
def test_mutations_get_the_same_verdict(name: str, path: str, value: Any) -> None:
    kind = name.split(".")[0]
    schema_ok, fast_ok = verdicts(kind, mutate(example(name), path, value))
    assert fast_ok == schema_ok


def test_the_mutation_table_holds_both_verdicts() -> None:
    accepted = sum(not errors(n.split(".")[0], mutate(example(n), p, v)) for n, p, v in MUTATIONS)
    assert 5 < accepted < len(MUTATIONS) - 20  # it tests refusals and acceptances alike


def test_a_name_list_found_good_never_admits_names_that_join_to_the_same_string() -> None:
    """wire.Names remembers whole name lists found good (one lookup a message); a list of
    other names must still be checked, however its names join."""
    names = wire.Names()

    def payload(readings: list[tuple[str, str]], ids: list[str]) -> bytes:
        return json.dumps({
            **example("telemetry.valid.json"),
            "readings": [{"component": c, "metric": m, "value": 1.0} for c, m in readings],
            "components": [{"id": i, "kind": "disk", "status": "ok"} for i in ids]}).encode()

    def telemetry(readings: list[tuple[str, str]], ids: list[str]) -> Any:
        return wire.DECODERS["telemetry"].decode(payload(readings, ids))

    good = telemetry([("disk:a", "m.x"), ("disk:b", "m.y")], ["disk:a", "disk:b"])
    key = wire.readings_key(good.readings)
    assert key == "disk:a/disk:b\nm.x/m.y"
    assert names.problem(good, key) is None
    assert names.problem(good, key) is None  # now from the remembered lists
    for readings, ids in ([("disk:a/disk:b", "m.x/m.y")], ["disk:a"]), (
            [("disk:a", "m.x")], ["disk:a/disk:b"]), ([("disk:a\ndisk:b", "m.x")], []):
        hostile = telemetry(readings, ids)
        assert names.problem(hostile, wire.readings_key(hostile.readings)) is not None
        assert wire.parse("telemetry", payload(readings, ids)) == names.problem(hostile)
        # (the module's own cache gives the same verdict)
