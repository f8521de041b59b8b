"""Contacts and account teams in the fleet file: validated with file and key, loaded as truth."""

from __future__ import annotations

import copy
from typing import Any

import psycopg
import pytest

from dispatcher.fleet import FleetError, parse_fleet
from dispatcher.store.fleet import apply_fleet

SRC = "fleet.yaml"


def fleet() -> dict[str, Any]:
    """One site, a manager with two channels, a customer with an account team."""
    return {
        "sites": [{"id": "iad1", "name": "Ashburn 1", "manager": "t-maria"}],
        "technicians": [{"id": "t-maria", "name": "Maria", "site": "iad1", "role": "manager",
                         "email": "maria@example.net",
                         "webhook": "https://chat.example.net/hooks/x"}],
        "customers": [{"id": "acme", "name": "Acme", "account_manager": "am-lee",
                       "account_team": ["am-kim", "t-maria"],
                       "hosts": [{"id": "web-01", "site": "iad1", "monthly_fee": 450}]}],
        "account_people": [{"id": "am-lee", "name": "Lee", "email": "lee@example.net"},
                           {"id": "am-kim", "name": "Kim"}],
    }


def broken(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """A copy of the fleet with one value replaced."""
    data = copy.deepcopy(fleet())
    node: Any = data
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("data", "where", "words"),
    [
        (broken(("technicians", 0, "email"), "maria"), "technicians[0].email",
         "not an email address"),
        (broken(("technicians", 0, "webhook"), "ftp://x/y"), "technicians[0].webhook",
         "not an http(s) URL"),
        (broken(("account_people", 1, "webhook"), 42), "account_people[1].webhook",
         "not an http(s) URL"),
        (broken(("customers", 0, "account_team"), ["am-nobody"]), "customers[0].account_team[0]",
         "unknown person 'am-nobody'"),
        (broken(("customers", 0, "account_team"), "am-kim"), "customers[0].account_team",
         "expected a list"),
        (broken(("account_people", 1, "id"), "am-lee"), "account_people[1].id",
         "duplicate person id"),
        (broken(("account_people", 1, "id"), "t-maria"), "technicians[0].id",
         "also under account_people"),
        (broken(("account_people", 0, "phone"), "555"), "account_people[0].phone",
         "unknown key"),
    ],
)
def test_bad_contacts_name_file_and_key(data: dict[str, Any], where: str, words: str) -> None:
    with pytest.raises(FleetError) as err:
        parse_fleet(data, SRC)
    assert str(err.value).startswith(f"{SRC}: {where}: ")
    assert words in str(err.value)


def test_contacts_and_team_load_and_follow_the_file(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        apply_fleet(conn, parse_fleet(fleet(), SRC))
        assert contacts(conn) == [("am-lee", "email", "lee@example.net"),
                                  ("t-maria", "email", "maria@example.net"),
                                  ("t-maria", "webhook", "https://chat.example.net/hooks/x")]
        assert team(conn) == [("acme", "am-kim"), ("acme", "t-maria")]
        # Maria drops her webhook, Lee changes address, the team loses Maria: loaded again.
        data = fleet()
        del data["technicians"][0]["webhook"]
        data["account_people"][0]["email"] = "lee.park@example.net"
        data["customers"][0]["account_team"] = ["am-kim"]
        apply_fleet(conn, parse_fleet(data, SRC))
        assert contacts(conn) == [("am-lee", "email", "lee.park@example.net"),
                                  ("t-maria", "email", "maria@example.net")]
        assert team(conn) == [("acme", "am-kim")]
        assert conn.execute("SELECT id, name FROM account_people ORDER BY id").fetchall() == [
            ("am-kim", "Kim"), ("am-lee", "Lee")]


def contacts(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    """Every contact row, sorted."""
    return conn.execute("SELECT person_id, channel, address FROM contacts"
                        " ORDER BY 1, 2").fetchall()


def team(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    """Every account team row, sorted."""
    return conn.execute("SELECT customer_id, person_id FROM account_team ORDER BY 1, 2").fetchall()
