"""A running Hourglass for the operations tests: PostgreSQL, Mosquitto with a TLS listener,
a collector over mqtts and a dispatcher, with some traffic and a finished incident's rows."""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from tests.agent.brokers import Broker
from tests.agent.certs import CA
from tests.collector.live import Collector, seed
from tests.conftest import ADMIN_URL, eventually, free_port, wait_port
from tests.dispatcher.procs import start_dispatcher

EXAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "mqtt" / "examples"
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{| )", re.MULTILINE)


@dataclass
class System:
    """Where each part of the running system answers."""

    pg_url: str
    mqtt_url: str  # the plain listener the test traffic uses
    mqtts_url: str  # the TLS listener the collector uses
    ca: Path
    collector: Collector
    dispatcher_url: str

    @property
    def collector_url(self) -> str:
        """The collector's health and metrics address."""
        return f"http://127.0.0.1:{self.collector.port}"

    def metrics(self) -> dict[str, str]:
        """Both /metrics texts, by process."""
        return {"collector": httpx.get(self.collector_url + "/metrics", timeout=10).text,
                "dispatcher": httpx.get(self.dispatcher_url + "/metrics", timeout=10).text}

    def metric_names(self) -> set[str]:
        """Every sample name both /metrics carry (histograms' _bucket, _sum, _count too)."""
        return {n for text in self.metrics().values() for n in SAMPLE.findall(text)}


def new_database(template: str) -> str:
    """A fresh clone of the migrated template database."""
    name = f"hg_ops_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
    return ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_database(url: str) -> None:
    """Drop a database made by new_database."""
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")


def tls_broker(workdir: Path) -> tuple[Broker, CA, int]:
    """Mosquitto with a TLS listener (a private CA) beside its plain one."""
    ca = CA(workdir / "pki")
    server = ca.issue("broker", server=True)
    tls_port, plain_port = free_port(), free_port()
    conf = (f"per_listener_settings false\nallow_anonymous true\n"
            f"listener {plain_port} 127.0.0.1\n"
            f"listener {tls_port} 127.0.0.1\ncafile {ca.cert}\ncertfile {server.cert}\n"
            f"keyfile {server.key}\n")
    broker = Broker(workdir / "broker", extra_conf=conf, port=plain_port)
    broker.start()
    wait_port(tls_port)
    return broker, ca, tls_port


def publish_traffic(mqtt_url: str) -> None:
    """A birth, telemetry (one with a failed disk), an event and one payload refused."""
    host, port = mqtt_url.removeprefix("mqtt://").split(":")
    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5,
                    client_id="ops-traffic")
    c.connect(host, int(port))
    c.loop_start()
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    for kind, name in (("birth", "birth"), ("telemetry", "telemetry"),
                       ("telemetry", "telemetry-failed-disk"), ("event", "event")):
        body = json.loads((EXAMPLES / f"{name}.valid.json").read_text())
        body["ts"] = now  # so publish-to-commit measures this run, not the example's date
        c.publish(f"hg/v1/iad1/web-01/{kind}", json.dumps(body), qos=1).wait_for_publish(5)
    c.publish("hg/v1/iad1/web-01/telemetry", b"not json", qos=1).wait_for_publish(5)
    c.loop_stop()
    c.disconnect()


def finished_incident(url: str) -> None:
    """The rows of one incident gone the whole way, late: a job acknowledged and on site, a
    verified fix past the deadline, its credit, timers fired, a notification delivered."""
    t0 = datetime.now(UTC) - timedelta(hours=3)
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO technicians (id, name, site_id, role, skills) VALUES"
                     " ('t-ana', 'Ana', 'iad1', 'technician', '{disk}')")
        inc = conn.execute(
            "INSERT INTO incidents (host_id, site_id, customer_id, component, kind, failure,"
            " state, detected_at, deadline, sla_minutes, verified_at, assignee) VALUES"
            " ('web-01', 'iad1', 'acme', 'disk:OLD1', 'disk', 'smart_failed', 'verified',"
            " %s, %s, 60, %s, 't-ana') RETURNING id",
            (t0, t0 + timedelta(hours=1), t0 + timedelta(minutes=80))).fetchone()
        assert inc is not None
        conn.execute(
            "INSERT INTO jobs (incident_id, technician_id, state, dispatched_at,"
            " acknowledged_at, on_site_at, replaced_at, finished_at) VALUES"
            " (%s, 't-ana', 'done', %s, %s, %s, %s, %s)",
            (inc[0], t0, t0 + timedelta(minutes=3), t0 + timedelta(minutes=40),
             t0 + timedelta(minutes=70), t0 + timedelta(minutes=80)))
        conn.execute(
            "INSERT INTO credits (incident_id, customer_id, amount, currency, percent, periods,"
            " late_seconds, policy, issued_at) VALUES (%s, 'acme', 22.5, 'USD', 5, 1, 1200,"
            " '{}', %s)", (inc[0], t0 + timedelta(minutes=80)))
        conn.execute(
            "INSERT INTO timers (incident_id, kind, guard, due_at, created_at, fired_at,"
            " fired_by, outcome) VALUES (%s, 'risk', 'g', %s, %s, %s, 'd1', 'acted')",
            (inc[0], t0 + timedelta(minutes=45), t0, t0 + timedelta(minutes=45, seconds=1)))
        box = conn.execute(
            "INSERT INTO outbox (ref, recipient, channel, address, reason, subject, body,"
            " created_at, due_at, attempts, state, done_at) VALUES ('r1', 'am-lee', 'email',"
            " 'am@example.com', 'opened', 's', 'b', %s, %s, 1, 'sent', %s) RETURNING id",
            (t0, t0, t0 + timedelta(seconds=2))).fetchone()
        assert box is not None
        conn.execute(
            "INSERT INTO deliveries (outbox_id, attempt, started_at, outcome, duration_ms,"
            " worker) VALUES (%s, 1, %s, 'sent', 40, 'd1')", (box[0], t0))


def running_system(template: str, workdir: Path) -> Iterator[System]:
    """Start everything, send traffic, yield; stop what was started."""
    url = new_database(template)
    seed(url, "iad1", {"r1": ["web-01", "web-02"]})
    finished_incident(url)
    broker, ca, tls_port = tls_broker(workdir)
    mqtts = f"mqtts://127.0.0.1:{tls_port}"
    col = Collector(url, mqtts, SSL_CERT_FILE=str(ca.cert))
    port = free_port()
    disp: subprocess.Popen[bytes] | None = None
    try:
        col.start()
        disp = start_dispatcher(url, workdir / "dispatcher.log", {}, port)
        eventually(col.ready, 30, "the collector ready")
        publish_traffic(broker.url)
        eventually(lambda: (col.metric("hourglass_collector_messages_total") or 0) >= 1, 20,
                   "the traffic stored")
        disp_url = f"http://127.0.0.1:{port}"
        eventually(lambda: _ok(disp_url + "/readyz"), 30, "the dispatcher ready")
        yield System(url, broker.url, mqtts, ca.cert, col, disp_url)
    finally:
        col.stop()
        if disp is not None:
            disp.terminate()
            disp.wait(timeout=15)
        broker.stop()
        drop_database(url)


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
