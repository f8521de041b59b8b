"""Credit period by failure class through the engine, on a real database."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import psycopg
import pytest

from dispatcher.domain import credit, policy
from dispatcher.service.engine import run_pass
from tests.dispatcher.world import P, at, heal, open_incident, setup_fleet


@pytest.mark.parametrize(
    ("failure", "contract_period", "fixed_min", "periods", "amount"),
    [
        ("smart_failed", None, 60 + 30 + 1 / 60, 1, "22.50"),  # hardware: 60-min periods
        ("host_down", None, 60 + 30 + 1 / 60, 2, "45.00"),  # power: 30:01 late is 2 periods
        ("nic_carrier_lost", None, 60 + 29 + 59 / 60, 1, "22.50"),  # network: 29:59 is one
        ("host_down", 60.0, 60 + 30 + 1 / 60, 1, "22.50"),  # the contract's own period wins
    ],
)
def test_credit_period_follows_the_failure_class(
        pg_url: str, failure: str, contract_period: float | None, fixed_min: float,
        periods: int, amount: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as db:
        setup_fleet(db)
        db.execute("UPDATE customers SET credit_period_minutes = %s", (contract_period,))
        i = open_incident(db)
        db.execute("UPDATE incidents SET failure = %s WHERE id = %s", (failure, i))
        run_pass(db, P, at(0), "test")
        heal(db, i, at(fixed_min))
        run_pass(db, P, at(fixed_min + 1), "test")
        row: Any = db.execute("SELECT periods, amount, policy->>'period_minutes' FROM credits"
                              " WHERE incident_id = %s", (i,)).fetchone()
    expected_period = contract_period or credit.ClassPolicy().period_minutes(failure)
    assert (row[0], row[1], float(row[2])) == (periods, Decimal(amount), expected_period)


def test_configured_classes_reach_the_engine(pg_url: str) -> None:
    """dispatcher.credit in the config: power credited every 20 minutes."""
    p = policy.TimerPolicy(credit_classes=credit.ClassPolicy(power_minutes=20))
    with psycopg.connect(pg_url, autocommit=True) as db:
        setup_fleet(db)
        i = open_incident(db)
        db.execute("UPDATE incidents SET failure = 'host_down' WHERE id = %s", (i,))
        run_pass(db, p, at(0), "test")
        heal(db, i, at(60 + 20 + 1 / 60))
        run_pass(db, p, at(82), "test")
        row = db.execute("SELECT periods FROM credits WHERE incident_id = %s", (i,)).fetchone()
    assert row == (2,)
