"""`hourglass doctor`: asks each part of a running Hourglass whether it works, and prints one
line per check with what to do. The checks are adapters (each does its own I/O, bounded by
a timeout); `verdict` and `line` are pure."""

from __future__ import annotations

import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

from hourglass.config import Config, mqtt_endpoint
from schemas import coverage

TIMEOUT_S = 5.0  # each network check: long enough for a loaded server, short for a person
SKEW_S = 2.0  # clocks further apart than this misdate detections and deadlines
CERT_WARN_DAYS = 14  # as the HourglassCertificateExpiring alert
CANARY_WAIT_S = 6.0  # three canary intervals (collector.canary_interval_s, 2 s)
STATUS_STALE_S = 30.0  # a collector writes its status every 5 s; as /ops and /metrics


@dataclass(frozen=True)
class Check:
    """One check's outcome: ok, failed, or skipped (not configured), with what to do."""

    name: str
    state: str  # "ok", "FAIL", "warn" or "skip"
    said: str
    todo: str = ""


def line(c: Check) -> str:
    """One printed line: state, name, what was seen, and what to do."""
    todo = f" -> {c.todo}" if c.todo and c.state != "ok" else ""
    return f"{c.state:<4}  {c.name:<20}  {c.said}{todo}"


def verdict(checks: Iterable[Check]) -> int:
    """The exit code: 1 when any check failed."""
    return 1 if any(c.state == "FAIL" for c in checks) else 0


def run(cfg: Config, collector_urls: Sequence[str], dispatcher_urls: Sequence[str],
        out: Callable[[str], None] = print) -> int:
    """Run every check, print each line as it comes; the exit code."""
    checks: list[Check] = []

    def emit(found: Iterable[Check]) -> None:
        for c in found:
            checks.append(c)
            out(line(c))

    emit(database(cfg))
    live = {c.name.removeprefix("collector ") for c in checks
            if c.name.startswith("collector ") and c.state == "ok"}
    emit(broker(cfg, len(live)))
    emit(readiness("collector", collector_urls))
    emit(readiness("dispatcher", dispatcher_urls))
    emit(smtp(cfg))
    emit(push(cfg))
    failed = [c.name for c in checks if c.state == "FAIL"]
    out(f"{len(checks)} checks, {len(failed)} failed" + (f": {', '.join(failed)}"
                                                         if failed else ""))
    return verdict(checks)


def _where(url: str) -> str:
    """A database URL without its password, to print."""
    p = urlparse(url)
    return f"{p.hostname or 'localhost'}:{p.port or 5432}{p.path}"


def database(cfg: Config) -> list[Check]:
    """Reachable, migrations current, clock skew, collectors' own word, coverage."""
    import psycopg

    if not cfg.database_url:
        return [Check("database", "FAIL", "no database configured",
                      "set HOURGLASS_DATABASE_URL or database_url in the --config file")]
    try:
        conn = psycopg.connect(cfg.database_url, connect_timeout=int(TIMEOUT_S),
                               autocommit=True)
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return [Check("database", "FAIL", f"cannot connect to {_where(cfg.database_url)}: "
                      f"{first}", "start PostgreSQL or fix HOURGLASS_DATABASE_URL")]
    with conn:
        before = datetime.now(UTC)
        row = conn.execute("SELECT now(), current_setting('server_version')").fetchone()
        after = datetime.now(UTC)
        assert row is not None
        out = [Check("database", "ok", f"reachable: PostgreSQL {row[1]} at "
                                       f"{_where(cfg.database_url)}")]
        out.append(_migrations(conn))
        skew = (row[0] - (before + (after - before) / 2)).total_seconds()
        out.append(Check("clock skew", "ok" if abs(skew) <= SKEW_S else "FAIL",
                         f"this host's clock is {abs(skew):.2f} s "
                         f"{'behind' if skew > 0 else 'ahead of'} the database's",
                         "run NTP (chrony or systemd-timesyncd) on both hosts"))
        for step in (_collector_rows, _coverage):
            try:
                out += step(conn)
            except psycopg.errors.UndefinedTable as exc:  # a database never migrated
                out.append(Check(step.__name__.strip("_").replace("_rows", "s"), "FAIL",
                                 f"cannot read: {str(exc).splitlines()[0]}",
                                 "run `hourglass db migrate`"))
    return out


def _migrations(conn: Any) -> Check:
    """Every shipped migration applied?"""
    import psycopg

    from schemas.migrate import available

    try:
        done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
    except psycopg.errors.UndefinedTable:  # never migrated
        done = set()
    missing = sorted({m.version for m in available()} - done)
    if missing:
        return Check("migrations", "FAIL", f"{len(missing)} not applied (first: "
                     f"{missing[0]:03d})", "run `hourglass db migrate`")
    return Check("migrations", "ok", f"current ({max(done):03d})")  # missing empty: done too


def _collector_rows(conn: Any) -> list[Check]:
    """Each collector's own status row (collector_status), as the dispatcher reads it."""
    rows = conn.execute("SELECT client_id, ready, reasons, extract(epoch FROM now() -"
                        " updated_at) FROM collector_status ORDER BY client_id").fetchall()
    if not rows:
        return [Check("collectors", "FAIL", "no collector has ever reported to this database",
                      "start `hourglass collector run` (systemctl start hourglass-collector)")]
    out = []
    for client_id, ready, reasons, age in rows:
        if age > STATUS_STALE_S:
            out.append(Check(f"collector {client_id}", "FAIL", f"silent for {age:.0f} s",
                             "it stopped or lost the database: check its service and log"))
        elif not ready:
            out.append(Check(f"collector {client_id}", "FAIL",
                             "not ready: " + "; ".join(reasons), "see its /readyz and log"))
        else:
            out.append(Check(f"collector {client_id}", "ok",
                             f"ready, reported {age:.0f} s ago"))
    return out


def _coverage(conn: Any) -> list[Check]:
    """Hosts whose agents cannot watch a kind of part, named."""
    rows = conn.execute("SELECT probe, status, array_agg(host_id ORDER BY host_id)"
                        " FROM probe_coverage WHERE status = ANY(%s) GROUP BY probe, status"
                        " ORDER BY probe, status", (list(coverage.SHORT),)).fetchall()
    if not rows:
        n = conn.execute("SELECT count(DISTINCT host_id) FROM probe_coverage").fetchone()
        return [Check("coverage", "ok", f"every probe of {n[0] if n else 0} reporting hosts "
                                        "works or has no parts to watch")]
    out = []
    for probe, status, hosts in rows:
        names = ", ".join(hosts[:10]) + (f" and {len(hosts) - 10} more"
                                         if len(hosts) > 10 else "")
        out.append(Check(f"coverage {probe}", "FAIL",
                         f"{coverage.sentence(probe, status, len(hosts))}: {names}",
                         "fix it on those hosts; `hourglass-agent check` there says what"))
    return out


def broker(cfg: Config, collectors: int = 0) -> list[Check]:
    """Reachable over MQTT, its certificate (mqtts), and the collectors' canaries on it
    (listening until as many collectors as the database knows ready are heard)."""
    host, port, tls = mqtt_endpoint(cfg.mqtt_url)
    out: list[Check] = []
    if tls:
        out.append(_certificate(host, port, cfg.mqtt_tls_files))
        if out[-1].state == "FAIL":
            return out
    heard, why = _canaries(cfg, host, port, tls, collectors)
    if why is not None:
        return [*out, Check("broker", "FAIL", f"cannot connect to {host}:{port}: {why}",
                            "start the broker (systemctl start mosquitto) or fix "
                            "HOURGLASS_MQTT_URL and the MQTT credentials")]
    out.insert(0, Check("broker", "ok", f"MQTT connect accepted at {host}:{port}"
                                        f"{' (TLS)' if tls else ''}"))
    if heard:
        out.append(Check("canary", "ok", f"heard from {', '.join(sorted(heard))} within "
                                         f"{CANARY_WAIT_S:.0f} s"))
    else:
        out.append(Check("canary", "FAIL", f"no collector's canary heard in "
                         f"{CANARY_WAIT_S:.0f} s", "start a collector on this broker, or "
                         "check that the broker's ACL lets it write hg/v1/_canary/#"))
    return out


def _certificate(host: str, port: int,
                 files: tuple[str | None, str | None, str | None] = (None, None, None)) -> Check:
    """The broker's certificate: trusted by this host, and how long before it expires.

    files: the collectors' CA, client certificate and key (mqtt_ca_file, ...), which the
    shipped broker asks for; without them SSL_CERT_FILE or the system store names the CA.
    """
    ca_file, cert_file, key_file = files
    ctx = ssl.create_default_context(cafile=ca_file)
    if cert_file:
        ctx.load_cert_chain(cert_file, key_file)
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT_S) as raw, \
                ctx.wrap_socket(raw, server_hostname=host) as s:
            cert = s.getpeercert()
    except ssl.SSLCertVerificationError as exc:
        return Check("broker certificate", "FAIL", f"not trusted: {exc.verify_message}",
                     "point SSL_CERT_FILE at the fleet's CA, or renew the broker's certificate")
    except OSError as exc:
        return Check("broker certificate", "FAIL", f"no TLS handshake with {host}:{port}: "
                     f"{exc.strerror or exc}", "start the broker or fix HOURGLASS_MQTT_URL")
    from collector.mqtt import issuer_not_after

    not_after = ssl.cert_time_to_seconds(str((cert or {}).get("notAfter")))
    ca = issuer_not_after(cert)
    days = (min(not_after, ca or not_after) - time.time()) / 86400
    ca_said = f", its CA on {datetime.fromtimestamp(ca, UTC):%Y-%m-%d}" if ca else ""
    state = "ok" if days >= CERT_WARN_DAYS else "warn"
    return Check("broker certificate", state, f"trusted, expires in {days:.1f} days "
                 f"(the certificate on {datetime.fromtimestamp(not_after, UTC):%Y-%m-%d}"
                 f"{ca_said})", "renew the broker's certificate (or the CA) and reload the "
                 "broker")


def _canaries(cfg: Config, host: str, port: int, tls: bool,
              expect: int) -> tuple[set[str], str | None]:
    """Connect, listen to the collectors' canaries; (who was heard, why not connected)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    connected, heard, refused = threading.Event(), set(), []
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                         client_id=f"hg-doctor-{socket.gethostname()}-{int(time.time())}",
                         protocol=mqtt.MQTTv5)
    if tls:  # the shipped broker wants a client certificate: the collectors' own
        ca, cert, key = cfg.mqtt_tls_files
        client.tls_set(ca_certs=ca, certfile=cert, keyfile=key)
    if cfg.mqtt_username:
        client.username_pw_set(cfg.mqtt_username, cfg.mqtt_password or None)

    def on_connect(c: Any, u: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            refused.append(str(reason))
        else:
            c.subscribe("hg/v1/_canary/+/canary", qos=0)  # not the shared group: steals none
        connected.set()

    def on_message(c: Any, u: Any, msg: Any) -> None:
        heard.add(msg.topic.split("/")[3])

    client.on_connect, client.on_message = on_connect, on_message
    try:
        client.connect(host, port, keepalive=10)
    except (OSError, ssl.SSLError) as exc:
        return set(), str(exc.strerror if isinstance(exc, OSError) and exc.strerror else exc)
    client.loop_start()
    try:
        if not connected.wait(TIMEOUT_S):
            return set(), "no CONNACK"
        if refused:
            return set(), f"refused: {refused[0]}"
        until = time.monotonic() + CANARY_WAIT_S
        while time.monotonic() < until and not (expect and len(heard) >= expect):
            time.sleep(0.1)
        return set(heard), None
    finally:
        client.disconnect()
        client.loop_stop()


def readiness(kind: str, urls: Sequence[str]) -> list[Check]:
    """GET each /readyz; 200 is ready, anything else says why."""
    import httpx

    out = []
    for base in urls:
        url = base.rstrip("/") + "/readyz"
        try:
            r = httpx.get(url, timeout=TIMEOUT_S)
        except httpx.HTTPError as exc:
            out.append(Check(f"{kind} readyz", "FAIL", f"nothing answers at {url}: "
                             f"{type(exc).__name__}", f"start the {kind}, or pass "
                             f"--{kind}-url with its address"))
            continue
        if r.status_code == 200:
            out.append(Check(f"{kind} readyz", "ok", f"ready at {url}"))
        else:
            said = r.text.strip().splitlines()[0][:200] if r.text.strip() else ""
            out.append(Check(f"{kind} readyz", "FAIL", f"{r.status_code} at {url}: {said}",
                             f"see the {kind}'s log"))
    return out


def smtp(cfg: Config) -> list[Check]:
    """The SMTP server answers EHLO (and STARTTLS when configured)."""
    n = cfg.notify
    if not n.smtp_host:
        return [Check("smtp", "skip", "not configured (notify.smtp_host): email is not sent")]
    try:
        with smtplib.SMTP(n.smtp_host, n.smtp_port, timeout=TIMEOUT_S) as s:
            code, _ = s.ehlo()
            if n.smtp_starttls:
                s.starttls(context=ssl.create_default_context())
    except (OSError, smtplib.SMTPException) as exc:
        return [Check("smtp", "FAIL", f"{n.smtp_host}:{n.smtp_port}: {exc}",
                      "fix notify.smtp_host/smtp_port or the mail relay")]
    return [Check("smtp", "ok", f"{n.smtp_host}:{n.smtp_port} answers EHLO ({code})")]


def push(cfg: Config) -> list[Check]:
    """The billing webhook's host accepts a connection (nothing is posted)."""
    url = cfg.notify.billing_webhook_url
    if not url:
        return [Check("push", "skip", "not configured (notify.billing_webhook_url)")]
    p = urlparse(url)
    port = p.port or (443 if p.scheme == "https" else 80)
    try:
        socket.create_connection((p.hostname or "", port), timeout=TIMEOUT_S).close()
    except OSError as exc:
        return [Check("push", "FAIL", f"{p.hostname}:{port}: {exc.strerror or exc}",
                      "fix notify.billing_webhook_url or the network path to billing")]
    return [Check("push", "ok", f"{p.hostname}:{port} accepts connections")]
