"""`hourglass doctor` on a healthy system and on a broken one: its lines and exit codes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from typing import Any

import psycopg
from aiosmtpd.controller import Controller

from tests.conftest import ADMIN_URL, eventually, free_port
from tests.ops.system import System


class Sink:
    """An SMTP server's handler that accepts and forgets."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        """Accept one message."""
        return "250 OK"


def doctor(env: dict[str, str], *args: str) -> tuple[int, list[str]]:
    """Run `hourglass doctor` as an operator would; its exit code and lines."""
    done = subprocess.run([sys.executable, "-m", "hourglass.cli", "doctor", *args],
                          env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=60, check=False)
    print(done.stdout, done.stderr)  # shown with -s: the closing note quotes it
    return done.returncode, done.stdout.splitlines()


def states(lines: list[str]) -> dict[str, str]:
    """Check name -> its state (the first word), for the lines of checks."""
    parts = [re.split(r"\s{2,}", ln, maxsplit=2) for ln in lines]
    return {p[1]: p[0] for p in parts if len(p) == 3 and p[0] in ("ok", "FAIL", "warn", "skip")}


def test_a_healthy_system_passes_every_check(system: System) -> None:
    with psycopg.connect(system.pg_url) as conn:  # its status row is written every 5 s
        eventually(lambda: conn.execute("SELECT bool_and(ready) FROM collector_status")
                   .fetchone() == (True,), 15, "the collector's status row ready")
    port = free_port()
    smtp = Controller(Sink(), hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        code, lines = doctor({"HOURGLASS_DATABASE_URL": system.pg_url,
                              "HOURGLASS_MQTT_URL": system.mqtts_url,
                              "SSL_CERT_FILE": str(system.ca),
                              "HOURGLASS_NOTIFY_SMTP_HOST": "127.0.0.1",
                              "HOURGLASS_NOTIFY_SMTP_PORT": str(port),
                              # any listening HTTP server stands for billing: nothing is posted
                              "HOURGLASS_NOTIFY_BILLING_WEBHOOK_URL": system.dispatcher_url,
                              "HOURGLASS_NOTIFY_BILLING_WEBHOOK_SECRET": "s"},
                             "--collector-url", system.collector_url,
                             "--dispatcher-url", system.dispatcher_url)
    finally:
        smtp.stop()
    got = states(lines)
    for name in ("database", "migrations", "clock skew", "collector hg-collector-test",
                 "broker", "broker certificate", "canary", "collector readyz",
                 "dispatcher readyz", "smtp", "push"):
        assert got.get(name) in ("ok", "warn"), (name, lines)  # warn: the test CA lives 1 day
    assert "expires in 0." in "\n".join(lines) or "expires in 1." in "\n".join(lines)
    assert lines[-1].endswith("0 failed"), lines
    assert code == 0


def test_a_broken_system_fails_and_says_what_to_do(system: System) -> None:
    closed = free_port()
    code, lines = doctor({"HOURGLASS_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{closed}/x",
                          "HOURGLASS_MQTT_URL": f"mqtt://127.0.0.1:{free_port()}",
                          "HOURGLASS_NOTIFY_SMTP_HOST": "127.0.0.1",
                          "HOURGLASS_NOTIFY_SMTP_PORT": str(closed)},
                         "--collector-url", f"http://127.0.0.1:{closed}",
                         "--dispatcher-url", f"http://127.0.0.1:{closed}")
    assert code == 1
    text = "\n".join(lines)
    got = states(lines)
    for name in ("database", "broker", "collector readyz", "dispatcher readyz", "smtp"):
        assert got[name] == "FAIL", (name, lines)
    assert got["push"] == "skip"
    for todo in ("start PostgreSQL or fix HOURGLASS_DATABASE_URL", "start the broker",
                 "start the collector", "fix notify.smtp_host"):
        assert todo in text
    assert lines[-1] == ("6 checks, 5 failed: database, broker, collector readyz, "
                         "dispatcher readyz, smtp")


def test_a_database_never_migrated_says_run_migrate() -> None:
    name = f"hg_empty_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        closed = free_port()
        code, lines = doctor({"HOURGLASS_DATABASE_URL": ADMIN_URL.rsplit("/", 1)[0] + f"/{name}",
                              "HOURGLASS_MQTT_URL": f"mqtt://127.0.0.1:{closed}"},
                             "--collector-url", f"http://127.0.0.1:{closed}",
                             "--dispatcher-url", f"http://127.0.0.1:{closed}")
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    got = states(lines)
    assert code == 1
    assert got["database"] == "ok"
    for name in ("migrations", "collectors", "coverage"):
        assert got[name] == "FAIL", lines
    assert "run `hourglass db migrate`" in "\n".join(lines)
