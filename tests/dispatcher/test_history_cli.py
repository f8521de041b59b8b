"""`hourglass history` against a real database, its telemetry written by the collector's own
store: one component's metric, one component, a host's everything, exact values, clear
errors."""

from __future__ import annotations

import json
import random
import struct
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from collector import store
from collector.decode import decode
from collector.model import Message, Received
from dispatcher.store import telemetry
from hourglass.cli import main
from tests.conftest import ADMIN_URL, _url

T0 = datetime(2026, 11, 24, 10, tzinfo=UTC)
Sent = dict[tuple[str, datetime], list[float]]  # the values sent, by (host, time)
Run = Callable[..., tuple[int, str, str]]  # hourglass history ARGV: exit code, stdout, stderr
NAMES = [("host:web-01", "cpu.percent"), ("host:web-01", "load.1m"),
         ("disk:S1", "smart.temperature_c"), ("disk:S1", "smart.attr_5_raw"),
         ("psu:1", "psu.watts"), ("fan:fan1", "fan.rpm")]


def _values(rnd: random.Random) -> list[float]:
    """The simulator's kinds of value: decimals, integers, an unrounded double."""
    return [round(rnd.uniform(2, 60), 1), round(rnd.uniform(0, 8), 2),
            float(rnd.randint(28, 41)), 0.0, rnd.uniform(180, 260),
            float(rnd.randint(5200, 6400))]


def _message(host: str, seq: int, values: list[float], at: datetime) -> Message:
    readings = ",".join(f'{{"component":"{c.replace("web-01", host)}","metric":"{m}",'
                        f'"value":{v!r}}}' for (c, m), v in zip(NAMES, values, strict=True))
    payload = (f'{{"v":1,"kind":"telemetry","host":"{host}","site":"iad1","seq":{seq},'
               f'"ts":"{at:%Y-%m-%dT%H:%M:%S.%f}Z","interval_s":30,"readings":[{readings}],'
               f'"components":[]}}').encode()
    msg = decode(Received(f"hg/v1/iad1/{host}/telemetry", payload, seq, 1, at))
    assert isinstance(msg, Message), msg
    return msg


@pytest.fixture(scope="module")
def pg_url_module(pg_template: str) -> Iterator[str]:
    """One database for the module's tests, which only read it (a clone of the template)."""
    name = f"hg_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name} TEMPLATE {pg_template}")
    yield _url(name)
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="module")
def fleet(pg_url_module: str) -> Sent:
    """web-01: two hours from T0 on, a message every 30 s; web-02: three messages near now
    and one two hours back; web-03 in the fleet, silent. The values sent, by (host, time)."""
    rnd = random.Random(18)
    now = datetime.now(UTC).replace(microsecond=0)
    sent = {("web-01", T0 + timedelta(seconds=30 * i)): _values(rnd) for i in range(241)}
    sent |= {("web-02", now - timedelta(minutes=m)): _values(rnd) for m in (120, 10, 5, 1)}
    with psycopg.connect(pg_url_module, autocommit=True) as conn:
        conn.execute("INSERT INTO sites (id, name) VALUES ('iad1', 'Ashburn 1')")
        conn.execute("INSERT INTO customers (id, name) VALUES ('acme', 'Acme')")
        for h in ("web-01", "web-02", "web-03"):
            conn.execute("INSERT INTO hosts (id, customer_id, site_id) VALUES (%s, 'acme',"
                         " 'iad1')", (h,))
        batch = [_message(h, i + 1, v, t) for i, ((h, t), v) in enumerate(sorted(sent.items()))]
        assert store.write_batch(conn, store.Directory(), batch, []).accepted == len(batch)
    return sent


@pytest.fixture
def run(pg_url_module: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> Run:
    """Run the command line against the database: (exit code, stdout, stderr)."""
    monkeypatch.setenv("HOURGLASS_DATABASE_URL", pg_url_module)

    def go(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        rc = main(["history", *argv])
        out = capsys.readouterr()
        return rc, out.out, out.err
    return go


def _bits(v: float) -> bytes:
    return struct.pack("!d", v)


def _z(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_one_components_metric_over_an_hour_as_a_table_and_as_json(fleet: Sent, run: Run) -> None:
    since, until = T0 + timedelta(hours=1), T0 + timedelta(hours=2)
    rc, out, _ = run("web-01", "psu:1", "psu.watts", "--since", _z(since), "--until", _z(until))
    lines = out.splitlines()
    assert rc == 0
    assert lines[0].split() == ["TIME", "VALUE"]
    want = [(t, v[4]) for (h, t), v in sorted(fleet.items())
            if h == "web-01" and since < t <= until]
    assert len(want) == 120 == len(lines) - 1
    assert [ln.split() for ln in lines[1:]] == [[_z(t), repr(v)] for t, v in want]
    rc, out, _ = run("web-01", "psu:1", "psu.watts", "--since", "1h", "--until", _z(until),
                     "--json")
    doc = json.loads(out)
    assert (doc["host"], doc["since"], doc["until"]) == ("web-01", since.isoformat().replace(
        "+00:00", "Z"), until.isoformat().replace("+00:00", "Z"))
    assert [_bits(p["value"]) for p in doc["points"]] == [_bits(v) for _, v in want]
    assert {(p["component"], p["metric"]) for p in doc["points"]} == {("psu:1", "psu.watts")}


def test_a_hosts_hour_of_everything_and_one_component(fleet: Sent, run: Run) -> None:
    since, until = T0, T0 + timedelta(hours=1)
    rc, out, _ = run("web-01", "--since", _z(since), "--until", _z(until), "--json")
    got = [(p["time"], p["component"], p["metric"], p["value"]) for p in json.loads(out)["points"]]
    want = sorted((t.isoformat().replace("+00:00", "Z"), c, m, v)
                  for (h, t), vals in fleet.items() if h == "web-01" and since < t <= until
                  for (c, m), v in zip(NAMES, vals, strict=True))
    assert rc == 0
    assert got == want  # every value exactly as sent, time then component then metric
    assert len(got) == 120 * len(NAMES)
    rc, out, _ = run("web-01", "host:web-01", "--since", _z(since), "--until", _z(until))
    lines = out.splitlines()
    assert lines[0].split() == ["TIME", "COMPONENT", "METRIC", "VALUE"]
    assert {ln.split()[2] for ln in lines[1:]} == {"cpu.percent", "load.1m"}
    assert len(lines) == 1 + 240
    # the default window is the last hour up to now
    rc, out, _ = run("web-02", "--json")
    assert rc == 0
    assert len(json.loads(out)["points"]) == 3 * len(NAMES)  # not the one two hours back


@pytest.mark.parametrize(("argv", "says"), [
    (["web-99"], "no host 'web-99' in the fleet"),
    (["web-03"], "host 'web-03' sent no telemetry between"),
    (["web-01", "--until", "2026-11-24T13:00:00Z"],
     "its last value is from 2026-11-24T12:00:00Z"),
    (["web-01", "disk:S9", "--until", "2026-11-24T11:00:00Z"],
     "its components then: disk:S1, fan:fan1, host:web-01, psu:1"),
    (["web-01", "disk:S1", "smart.temp", "--until", "2026-11-24T11:00:00Z"],
     "its metrics then: smart.attr_5_raw, smart.temperature_c"),
    (["web-01", "--since", "2026-11-24T11:00:00Z", "--until", "2026-11-24T10:00:00Z"],
     "the window is empty"),
])
def test_questions_it_cannot_answer_say_what_to_ask(fleet: Sent, run: Run, argv: list[str],
                                                     says: str) -> None:
    rc, out, err = run(*argv)
    assert (rc, out) == (2, "")
    assert says in err


def test_bad_times_and_too_many_values_are_refused(fleet: Sent, run: Run, pg_url_module: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    for text in ("yesterday", "2026-11-24T10:00:00"):  # a time needs its offset
        with pytest.raises(SystemExit) as exc:
            main(["history", "web-01", "--since", text])
        assert exc.value.code == 2
        assert "neither a time with its offset" in capsys.readouterr().err
    with psycopg.connect(pg_url_module) as conn, pytest.raises(telemetry.HistoryError,
                                                               match="more than 100 values"):
        telemetry.points(conn, "web-01", T0, T0 + timedelta(hours=1), limit=100)
    with psycopg.connect(pg_url_module) as conn, pytest.raises(telemetry.HistoryError,
                                                               match="needs its component"):
        telemetry.points(conn, "web-01", T0, T0 + timedelta(hours=1), metric="fan.rpm")
