"""Which timeline event tells whom, and the retry schedule: table-driven, pure."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from dispatcher.domain import notify

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
INC = notify.Incident(12, "web-01", "iad1", "acme", "disk:Z1", "smart_failed",
                      datetime(2026, 11, 23, 10, 0, tzinfo=UTC))
TEAM = notify.AccountTeam("am-lee", ("am-kim", "am-lee"))


def ev(kind: str, **detail: Any) -> notify.Event:
    """An event of this kind at T0."""
    return notify.Event(345, T0, "dispatcher", kind, detail)


@pytest.mark.parametrize(
    ("event", "told"),
    [
        (ev("dispatched", technician="t-ana", transfer=0), [("t-ana", "dispatched")]),
        (ev("reassigned", **{"from": "t-ana", "to": "t-bob"}), [("t-bob", "dispatched")]),
        (ev("escalated", step="ack_timeout", to="t-maria", role="manager", reason="r"),
         [("t-maria", "escalated")]),
        (ev("escalated", step="risk", to="t-maria", role="manager", reason="r"),
         [("t-maria", "escalated")]),
        (ev("escalated", step="assignment", to="t-maria", reason="no one fits"),
         [("t-maria", "escalated")]),
        (ev("escalated", step="breach", to="t-eve", role="executive", reason="r"),
         [("t-eve", "breach")]),
        (ev("reopened", job=3, technician="t-ana", to="t-maria", role="manager", reason="r"),
         [("t-maria", "verify_timeout")]),
        (ev("reopened", job=3, technician="t-ana", to=None, role="manager", reason="r"), []),
        (ev("detected"), [("am-lee", "incident_opened"), ("am-kim", "incident_opened")]),
        (ev("verified"), [("am-lee", "incident_verified"), ("am-kim", "incident_verified")]),
        (ev("credit_issued", credit=1, amount="22.50", currency="USD", percent="5"),
         [("am-lee", "credit_issued"), ("am-kim", "credit_issued")]),
        (ev("acknowledged"), []),
        (ev("paused", reason="customer_denied_access"), []),
        (ev("closed"), []),
    ],
)
def test_event_tells_the_right_people(event: notify.Event, told: list[tuple[str, str]]) -> None:
    got = notify.messages(event, INC, TEAM)
    assert [(m.recipient, m.reason) for m in got] == told
    for m in got:
        assert "incident 12" in m.subject
        assert "disk:Z1 on web-01" in m.body


def test_account_team_without_manager_and_empty_team() -> None:
    assert notify.messages(ev("detected"), INC, notify.AccountTeam(None)) == ()
    got = notify.messages(ev("detected"), INC, notify.AccountTeam(None, ("am-kim",)))
    assert [m.recipient for m in got] == ["am-kim"]


def test_a_person_is_told_once_per_event() -> None:
    """The account manager who is also the named person gets one message, not two."""
    got = notify.messages(ev("escalated", step="risk", to="am-lee"), INC, TEAM)
    assert [(m.recipient, m.reason) for m in got] == [("am-lee", "escalated")]


def test_dispatch_message_names_the_reserved_spare() -> None:
    (m, *_) = notify.messages(ev("dispatched", technician="t-ana", spare="ST8000NM000A"),
                              INC, TEAM)
    assert "You are assigned: disk:Z1 on web-01 (smart_failed) at iad1. Spare reserved: " \
        "ST8000NM000A." in m.body


def test_credit_message_carries_the_amount() -> None:
    (m, _) = notify.messages(ev("credit_issued", amount="22.50", currency="USD", percent="5"),
                             INC, TEAM)
    assert "22.50 USD (5 % of the monthly fee)" in m.body


def test_low_stock_tells_the_site_manager() -> None:
    alert = notify.LowStock(4, "iad1", "ST8000NM000A", "disk", 1, 1, T0)
    (m,) = notify.low_stock(alert, "t-maria")
    assert (m.recipient, m.reason) == ("t-maria", "low_spares")
    assert "ST8000NM000A (disk) at iad1: 1 available, threshold 1" in m.body
    assert notify.low_stock(alert, None) == ()


@pytest.mark.parametrize(
    ("attempt", "jitter", "seconds"),
    [
        (1, 0.0, 15.0),  # the first retry: half of the 30 s step at the least ...
        (1, 0.999999, 29.99997),  # ... just under the whole step at the most
        (2, 0.0, 30.0),
        (3, 0.5, 90.0),  # step 120 s: 60 + 30
        (7, 0.0, 960.0),  # step 1920 s
        (8, 0.0, 1800.0),  # step 3840 s capped at 3600 s
        (40, 1.0, 3600.0),  # never more than the cap, never an overflow
    ],
)
def test_backoff_doubles_with_jitter_up_to_the_cap(attempt: int, jitter: float,
                                                    seconds: float) -> None:
    assert notify.backoff_s(attempt, 30.0, 3600.0, jitter) == pytest.approx(seconds)
