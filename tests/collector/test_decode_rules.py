"""Pure tests of decoding (dead letters with reasons) and of the detection rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import pytest

from collector.decode import decode
from collector.model import DeadLetter, Message, Received
from collector.rules import describe, detect, host_down_due
from schemas.mqtt_contract import errors

NOW = datetime(2026, 11, 23, 9, 5, tzinfo=UTC)
EXAMPLES = resources.files("schemas").joinpath("mqtt", "examples")


def example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(EXAMPLES.joinpath(name).read_text())
    return data


def received(topic: str, payload: bytes) -> Received:
    return Received(topic, payload, 1, 1, NOW)


@pytest.mark.parametrize("entry", sorted(p.name for p in EXAMPLES.iterdir()))
def test_examples_match_the_schema(entry: str) -> None:
    kind = entry.split(".")[0].split("-")[0]
    problems = errors(kind, example(entry))
    if ".valid." in entry:
        assert problems == []
    else:
        assert problems, f"{entry} should be refused"


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("hg/v1/iad1/web-01/telemetry", b"\xff\xfe not json", "not JSON"),
        ("hg/v1/iad1/web-01/telemetry", b'{"v": 1}', "schema:"),
        ("hg/v1/iad1/web-01/smoke", b"{}", "unknown kind"),
        ("other/topic", b"{}", "topic is not"),
        ("hg/v1/iad1/web-02/state", json.dumps(example("state.valid.json")).encode(),
         "published under iad1/web-02"),
        ("hg/v1/iad1/web-01/event", json.dumps(example("state.valid.json")).encode(), "schema:"),
    ],
)
def test_bad_input_becomes_a_dead_letter_with_a_reason(topic: str, payload: bytes,
                                                       reason: str) -> None:
    got = decode(received(topic, payload))
    assert isinstance(got, DeadLetter)
    assert reason in got.reason
    assert got.payload == payload


def msg(name: str) -> Message:
    body = example(name)
    got = decode(received(f"hg/v1/{body['site']}/{body['host']}/{body['kind']}",
                          json.dumps(body).encode()))
    assert isinstance(got, Message)
    return got


def test_healthy_telemetry_detects_nothing() -> None:
    assert detect(msg("telemetry.valid.json")) == []


def test_failed_disk_state_opens_smart_failed_at_the_telemetry_time() -> None:
    ((klass, d),) = detect(msg("telemetry-failed-disk.valid.json"))
    assert klass == "failure"
    assert (d.component, d.kind, d.failure, d.slot, d.serial, d.rule) == (
        "disk:ZL2ABCD1", "disk", "smart_failed", "sda", "ZL2ABCD1", "smart_failed")
    assert d.detected_at == datetime(2026, 11, 23, 9, 4, 30, tzinfo=UTC)


def test_event_uses_its_detection_time_not_the_send_time() -> None:
    ((_, d),) = detect(msg("event.valid.json"))
    assert d.failure == "smart_failed"
    assert d.detected_at == datetime(2026, 11, 23, 9, 4, 11, tzinfo=UTC)


def test_one_zero_rpm_reading_alone_is_not_a_failure_per_message() -> None:
    """The collector's own 0 rpm rule needs two readings in a row (collector.stateful)."""
    body = example("telemetry.valid.json")
    body["readings"][2]["value"] = 0
    m = decode(received("hg/v1/iad1/web-01/telemetry", json.dumps(body).encode()))
    assert isinstance(m, Message)
    assert detect(m) == []


def test_one_detection_per_component_and_failure() -> None:
    body = example("telemetry.valid.json")
    body["readings"][2]["value"] = 0
    body["components"][1].update(status="failed", failure="fan_stopped")
    m = decode(received("hg/v1/iad1/web-01/telemetry", json.dumps(body).encode()))
    assert isinstance(m, Message)
    assert [d.failure for _, d in detect(m)] == ["fan_stopped"]


@pytest.mark.parametrize(
    ("silent_s", "interval", "due_after_s"),
    [(89, 30, None), (90, 30, 90), (600, 30, 90), (3, 1, 3)],
)
def test_host_down_after_three_missed_intervals(silent_s: float, interval: float,
                                               due_after_s: float | None) -> None:
    from datetime import timedelta

    last = NOW
    got = host_down_due(last, interval, 3, NOW + timedelta(seconds=silent_s))
    assert got == (None if due_after_s is None else NOW + timedelta(seconds=due_after_s))


def test_rules_are_listed() -> None:
    names = {r["name"] for r in describe()}
    assert {"smart_failed", "fan_stopped", "psu_lost", "host_down"} <= names


@pytest.mark.parametrize(
    ("kind", "component", "failure"),
    [("dimm", "dimm:A1", "ecc_uncorrectable"), ("raid", "raid:md0", "raid_degraded"),
     ("bmc", "bmc:ps_fault", "bmc_critical")],
)
def test_failures_the_agent_reports_open_incidents(kind: str, component: str,
                                                   failure: str) -> None:
    body = example("telemetry.valid.json")
    body["components"] = [{"id": component, "kind": kind, "status": "failed",
                           "failure": failure}]
    m = decode(received("hg/v1/iad1/web-01/telemetry", json.dumps(body).encode()))
    assert isinstance(m, Message)
    assert [(k, d.component, d.failure, d.rule) for k, d in detect(m)] == [
        ("failure", component, failure, failure)]


@pytest.mark.parametrize(
    ("status", "slug", "klass", "rule"),
    [("warning", "nvme_wear", "prediction", "nvme_wear"),
     ("warning", "brand_new_warning", "prediction", "reported_warning"),
     ("failed", "brand_new_failure", "failure", "reported_failure"),
     ("ok", None, None, None)],
)
def test_agent_verdicts_open_failures_or_predictions(status: str, slug: str | None,
                                                     klass: str | None, rule: str | None) -> None:
    body = example("telemetry.valid.json")
    body["components"] = [{"id": "disk:S1", "kind": "disk", "status": status,
                           **({"failure": slug} if slug else {})}]
    m = decode(received("hg/v1/iad1/web-01/telemetry", json.dumps(body).encode()))
    assert isinstance(m, Message)
    got = [(k, d.failure, d.rule) for k, d in detect(m)]
    assert got == ([(klass, slug, rule)] if klass else [])


def test_every_rule_names_kind_class_condition_and_evidence() -> None:
    rows = describe()
    assert all(r["class"] in ("failure", "prediction") and r["component"] and r["condition"]
               and r["evidence"] for r in rows)
    names = [r["name"] for r in rows]
    assert len(names) == len(set(names))
