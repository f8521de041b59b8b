"""A live rig for collector tests: a collector process, hosts that publish, a seeded fleet."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from agent import messages
from hourglass.config import mqtt_endpoint
from tests.conftest import free_port


def seed(url: str, site: str, racks: dict[str, list[str]]) -> None:
    """One site, one customer, the hosts of each rack."""
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO sites (id, name) VALUES (%s, %s)", (site, site.upper()))
        conn.execute("INSERT INTO customers (id, name, sla_minutes) VALUES ('acme', 'Acme', 60)")
        conn.cursor().executemany(
            "INSERT INTO hosts (id, customer_id, site_id, room, rack, monthly_fee)"
            " VALUES (%s, 'acme', %s, 'A', %s, 450)",
            [(h, site, rack) for rack, hosts in racks.items() for h in hosts])


class Collector:
    """`hourglass collector run` as a child process, with its health port."""

    def __init__(self, pg_url: str, mqtt_url: str, **env: str) -> None:
        self.port = free_port()
        self.env = {**os.environ, "HOURGLASS_DATABASE_URL": pg_url,
                    "HOURGLASS_MQTT_URL": mqtt_url, "HOURGLASS_COLLECTOR_BATCH_MS": "50",
                    "HOURGLASS_COLLECTOR_CLIENT_ID": "hg-collector-test",
                    "HOURGLASS_COLLECTOR_HTTP_ADDR": f"127.0.0.1:{self.port}", **env}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the process (again)."""
        self.proc = subprocess.Popen([sys.executable, "-m", "hourglass.cli", "collector", "run"],
                                     env=self.env)

    def kill(self) -> None:
        """SIGKILL: nothing flushed, nothing acknowledged that was not committed."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM and wait."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=15)

    def get(self, path: str) -> httpx.Response | None:
        """GET a health path; None while nothing listens."""
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}{path}", timeout=2)
        except httpx.HTTPError:
            return None

    def ready(self) -> bool:
        """/readyz answers 200."""
        r = self.get("/readyz")
        return r is not None and r.status_code == 200

    def readyz(self) -> tuple[int, str] | None:
        """/readyz's status and text."""
        r = self.get("/readyz")
        return None if r is None else (r.status_code, r.text)

    def metric(self, name: str) -> float | None:
        """One unlabelled (or first labelled) sample of /metrics."""
        r = self.get("/metrics")
        if r is None:
            return None
        for line in r.text.splitlines():
            if line.startswith(name) and not line.startswith("#"):
                return float(line.rsplit(" ", 1)[1])
        return None


def client(url: str, client_id: str, will: tuple[str, bytes] | None = None) -> mqtt.Client:
    """A connected MQTT 5 client with its network thread running; reconnects by itself."""
    host, port, _ = mqtt_endpoint(url)
    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5,
                    client_id=client_id)
    if will is not None:
        c.will_set(will[0], will[1], qos=1)
    c.reconnect_delay_set(min_delay=1, max_delay=1)
    c.connect(host, port)
    c.loop_start()
    return c


@dataclass
class Host:
    """A publishing host: telemetry every interval, seqs counted, silenced on demand."""

    name: str
    site: str
    url: str
    interval_s: float
    seq: int = 0
    published: list[int] = field(default_factory=list)  # seqs the broker acknowledged
    silent: threading.Event = field(default_factory=threading.Event)
    _client: mqtt.Client | None = None

    def start(self, stop: threading.Event, wills: bool = False) -> threading.Thread:
        """Connect (with a last will when asked) and publish until stop is set."""
        will = None
        if wills:
            self.seq += 1  # a will's seq is reserved when its connection opens
            body = messages.state(self.name, self.site, self.seq, datetime.now(UTC),
                                  False, reason="lost", session=f"s-{self.name}")
            will = (messages.topic(self.site, self.name, "state"), _json(body))
        self._client = client(self.url, f"host-{self.name}", will)
        if wills:  # online names the session its will shares, as the agent's does
            self.seq += 1
            body = messages.state(self.name, self.site, self.seq, datetime.now(UTC), True,
                                  session=f"s-{self.name}")
            self._client.publish(messages.topic(self.site, self.name, "state"), _json(body),
                                 qos=1)
        t = threading.Thread(target=self._run, args=(stop,), daemon=True)
        t.start()
        return t

    def _run(self, stop: threading.Event) -> None:
        while not stop.wait(self.interval_s):
            if self.silent.is_set() or self._client is None:
                continue
            if not self._client.is_connected():
                continue  # an agent spools; this one just speaks again once connected
            self.seq += 1
            body = messages.telemetry(self.name, self.site, self.seq, datetime.now(UTC),
                                      interval_s=self.interval_s, readings=[
                                          messages.Reading(f"host:{self.name}", "m.load", 1.0)],
                                      components=[])
            info = self._client.publish(messages.topic(self.site, self.name, "telemetry"),
                                        _json(body), qos=1)
            try:
                info.wait_for_publish(5)
            except (RuntimeError, ValueError):
                continue  # lost with the connection: never acknowledged, not counted
            if info.is_published():
                self.published.append(self.seq)

    def close(self) -> None:
        """Disconnect cleanly (no will)."""
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()
