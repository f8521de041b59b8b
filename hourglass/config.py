"""Server configuration: YAML file (optional), HOURGLASS_* environment overrides, validation."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

from agent.settings import load


@dataclass(frozen=True)
class CollectorConfig:
    """Collector batching."""

    batch_messages: int = 500  # a batch closes at 500 messages ...
    batch_ms: int = 250  # ... or 250 ms, whichever comes first
    client_id: str = ""
    # Writer threads, each with its own database connection: while one waits for its
    # transaction, another decodes and encodes (one alone left a third of a core idle).
    writers: int = 2
    # Raw telemetry is kept this many days (a day's partition, or Timescale chunk, goes
    # whole); its hourly roll-up (telemetry_hourly) is kept rollup_retention_days, the
    # years a capacity plan or a warranty claim looks back: measured 109 bytes a series
    # and hour against 120 raw values of ~7 bytes, about an eighth of the raw bytes.
    retention_days: int = 90
    rollup_retention_days: int = 730
    # Deduplication keys older than this are pruned (a message re-sent later than this is
    # a repeat if older than the host's pruned seq): far past the broker's 30-minute
    # session and the agent's spool, which holds about a day of a large server's outage.
    dedup_days: int = 7
    offline_grace_intervals: int = 3  # design: confirmed down after 3 missed intervals
    http_addr: str = "127.0.0.1:9464"  # /healthz, /readyz, /metrics ("" turns them off)
    # Rule thresholds; the reasons for the defaults are in collector.stateful.RuleParams.
    ecc_ce_per_24h: int = 24
    temp_high_minutes: float = 10.0
    raid_rebuild_limit_minutes: float = 1440.0
    smart_timeout_jump: float = 5.0
    nic_errors_per_hour: float = 100.0
    fan_zero_readings: int = 2
    # Facility correlation (collector.facility): this many hosts of one rack, or this
    # share of its hosts, going silent within the window make one facility incident.
    facility_min_hosts: int = 5
    facility_rack_fraction: float = 0.5
    facility_window_s: float = 60.0  # design: "within a minute"
    # Liveness (collector.liveness): every collector sends a canary every canary_interval_s
    # through the shared subscription, and each must hear something within
    # canary_timeout_s (with round-robin delivery a member gets its share of some seven
    # canaries in that time: one lost packet is no outage); no message may wait
    # unacknowledged longer than stall_s (a hundred batch windows of a slow database).
    canary_interval_s: float = 2.0
    canary_timeout_s: float = 15.0
    stall_s: float = 30.0
    # After our own input outage (broker lost, canary missing) host-down and facility
    # detection resume only once hosts had this many intervals to speak again; a site
    # whose reporting hosts fall silent at once, in this share and over two racks or more,
    # is taken for our input's outage too, not the site's hardware.
    resume_intervals: int = 3
    site_silent_fraction: float = 0.9
    # Seq-gap resend (collector.gaps): a missing seq is a gap once the seq after it has
    # been stored gap_grace_s; its agent is asked to resend it at once and again with
    # backoff, it is recorded unfilled after gap_give_up_s, and asked for until
    # gap_retention_s (the agents' spool_retention_s) has passed.
    gap_grace_s: float = 10.0
    gap_give_up_s: float = 900.0
    gap_retention_s: float = 86400.0

    def validate(self) -> None:
        """Reject sizes that cannot work."""
        if self.batch_messages < 1:
            raise ValueError("key 'collector.batch_messages': must be at least 1")
        if self.batch_ms < 1:
            raise ValueError("key 'collector.batch_ms': must be at least 1")
        if self.retention_days < 2:
            raise ValueError("key 'collector.retention_days': must be at least 2 (today's and "
                             "yesterday's partitions are written to)")
        if self.rollup_retention_days < self.retention_days:
            raise ValueError("key 'collector.rollup_retention_days': must be at least "
                             "collector.retention_days (an hour is rolled up when its raw "
                             "day is dropped)")
        if self.dedup_days < 1:
            raise ValueError("key 'collector.dedup_days': must be at least 1 (a day covers "
                             "broker sessions and agent spools)")
        if not 1 <= self.writers <= 16:
            raise ValueError("key 'collector.writers': must be from 1 to 16 (one interpreter "
                             "lock: more than a few only add database connections)")
        for key in ("ecc_ce_per_24h", "temp_high_minutes", "raid_rebuild_limit_minutes",
                    "smart_timeout_jump", "nic_errors_per_hour", "fan_zero_readings",
                    "facility_min_hosts", "facility_window_s", "canary_interval_s",
                    "canary_timeout_s", "stall_s", "resume_intervals", "gap_grace_s",
                    "gap_give_up_s", "gap_retention_s"):
            if getattr(self, key) <= 0:
                raise ValueError(f"key 'collector.{key}': must be more than 0")
        if not 0 < self.facility_rack_fraction <= 1:
            raise ValueError("key 'collector.facility_rack_fraction': must be in (0, 1]")
        if not 0 < self.site_silent_fraction <= 1:
            raise ValueError("key 'collector.site_silent_fraction': must be in (0, 1]")
        if self.canary_timeout_s <= self.canary_interval_s:
            raise ValueError("key 'collector.canary_timeout_s': must be more than "
                             "collector.canary_interval_s, or every canary is late")
        if self.gap_give_up_s >= self.gap_retention_s:
            raise ValueError("key 'collector.gap_give_up_s': must be less than "
                             "collector.gap_retention_s (a gap is given up within retention)")


@dataclass(frozen=True)
class CreditClassConfig:
    """Credit period per failure class and the slugs of each class (others are hardware)."""

    hardware_minutes: float = 60.0  # the published terms: 5 % per started hour
    power_minutes: float = 30.0  # power and network outages are credited per half hour
    network_minutes: float = 30.0
    power_failures: tuple[str, ...] = ("host_down", "power")  # docs/signals.md slugs
    network_failures: tuple[str, ...] = ("nic_carrier_lost", "network")

    def validate(self) -> None:
        """Reject periods that cannot work and a slug in two classes."""
        for key in ("hardware_minutes", "power_minutes", "network_minutes"):
            if getattr(self, key) <= 0:
                raise ValueError(f"key 'dispatcher.credit.{key}': must be more than 0")
        both = set(self.power_failures) & set(self.network_failures)
        if both:
            raise ValueError("keys 'dispatcher.credit.power_failures' and 'network_failures': "
                             f"{', '.join(sorted(both))} listed in both; keep each in one")


@dataclass(frozen=True)
class NotifyConfig:
    """Where notifications go: the SMTP server, the billing webhook, the retry policy."""

    smtp_host: str = ""  # empty: email is not sent (each attempt records why)
    smtp_port: int = 25
    smtp_starttls: bool = False
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_from: str = "hourglass@localhost"
    billing_webhook_url: str = ""  # empty: credits are not pushed (the export still works)
    billing_webhook_secret: str = ""
    max_attempts: int = 8  # 30 s doubling to the cap: about 1 h of tries before 'failed'
    backoff_base_s: float = 30.0
    backoff_cap_s: float = 3600.0  # at most an hour between two tries
    timeout_s: float = 10.0  # one SMTP or HTTP attempt; an attempt's lease is 6x this
    poll_s: float = 1.0  # the worker also wakes on NOTIFY
    # customers' webhooks (on /status) must be https; true also allows http:// to this
    # machine (localhost, 127.0.0.1, ::1), for a demo or a local relay
    local_webhooks: bool = False

    def validate(self) -> None:
        """Reject values that cannot work; a webhook URL needs its secret."""
        if self.max_attempts < 1:
            raise ValueError("key 'notify.max_attempts': must be at least 1")
        for key in ("backoff_base_s", "backoff_cap_s", "timeout_s", "poll_s"):
            if getattr(self, key) <= 0:
                raise ValueError(f"key 'notify.{key}': must be more than 0")
        url = urlparse(self.billing_webhook_url)
        if self.billing_webhook_url and (url.scheme not in ("http", "https") or not url.hostname):
            raise ValueError("key 'notify.billing_webhook_url': expected http(s)://host/path, "
                             f"got {self.billing_webhook_url!r}")
        if self.billing_webhook_url and not self.billing_webhook_secret:
            raise ValueError("key 'notify.billing_webhook_secret': required when "
                             "notify.billing_webhook_url is set (billing verifies the HMAC)")


@dataclass(frozen=True)
class DispatcherConfig:
    """Dispatcher timing."""

    tick_s: float = 1.0  # the loop also wakes on NOTIFY; this bounds a missed one
    default_sla_minutes: float = 60.0
    ack_window_minutes: float = 5.0  # design: a job is acknowledged within "three rings"
    risk_lead_minutes: float = 15.0  # design: no one on site at 45 min of a 60-min promise
    verify_window_minutes: float = 30.0  # "replaced" until telemetry must confirm the part
    # Verified but not confirmed by the customer: closed as "auto" after this quiet period
    # (three days: a weekend plus a working day to look).
    auto_close_hours: float = 72.0
    # A planned (not acknowledged) proactive job goes back to planning once its technician
    # has been off shift this long (reason: dispatcher.domain.proactive.OFF_SHIFT_WINDOW).
    proactive_off_shift_minutes: float = 60.0
    credit: CreditClassConfig = field(default_factory=CreditClassConfig)

    def validate(self) -> None:
        """Reject windows that cannot work."""
        for key in ("tick_s", "ack_window_minutes", "risk_lead_minutes", "verify_window_minutes",
                    "auto_close_hours"):
            if getattr(self, key) <= 0:
                raise ValueError(f"key 'dispatcher.{key}': must be more than 0")
        if self.proactive_off_shift_minutes <= 0:
            raise ValueError("key 'dispatcher.proactive_off_shift_minutes': must be more than 0")

    @property
    def proactive_off_shift_window(self) -> timedelta:
        """The off-shift window (dispatcher.service.settings turns the rest into policies)."""
        return timedelta(minutes=self.proactive_off_shift_minutes)


@dataclass(frozen=True)
class OidcConfig:
    """Staff sign in through the company's OpenID Connect provider (empty issuer: off)."""

    issuer: str = ""  # e.g. https://login.example.com/realms/staff (its discovery document)
    client_id: str = ""
    client_secret: str = ""
    # the ID token's claim that holds the person's id of the fleet file (technicians[].id)
    person_claim: str = "preferred_username"
    scope: str = "openid profile email"

    @property
    def enabled(self) -> bool:
        """Whether staff may sign in through the provider."""
        return bool(self.issuer)

    def validate(self) -> None:
        """An issuer needs a client id and secret, and is a URL."""
        if not self.issuer:
            return
        u = urlparse(self.issuer)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"key 'auth.oidc.issuer': expected https://host/..., got "
                             f"{self.issuer!r}")
        for key in ("client_id", "client_secret", "person_claim"):
            if not getattr(self, key):
                raise ValueError(f"key 'auth.oidc.{key}': required when auth.oidc.issuer is "
                                 "set (the provider's client registration)")


@dataclass(frozen=True)
class AuthConfig:
    """Sign-in: links, sessions, the address people reach the pages at, abuse limits."""

    # The address in sign-in links and the origin state-changing requests must come from,
    # e.g. https://hourglass.example.com; empty: http://{http_addr}. Cookies are Secure
    # when it is https.
    public_url: str = ""
    signin_ttl_minutes: float = 15  # a sign-in link works once, this long
    session_idle_minutes: float = 720  # a session unused this long ends (12 h: a shift)
    session_max_hours: float = 168  # and every session ends after a week
    failures_per_minute: int = 10  # wrong tokens, cookies and codes per client, then 429
    signin_requests_per_hour: int = 5  # sign-in links asked for, per client and per address
    oidc: OidcConfig = field(default_factory=OidcConfig)

    def validate(self) -> None:
        """Positive lifetimes and limits, and a public URL that is a URL."""
        for key in ("signin_ttl_minutes", "session_idle_minutes", "session_max_hours",
                    "failures_per_minute", "signin_requests_per_hour"):
            if getattr(self, key) <= 0:
                raise ValueError(f"key 'auth.{key}': must be more than 0")
        if self.public_url:
            u = urlparse(self.public_url)
            if u.scheme not in ("http", "https") or not u.hostname or u.path not in ("", "/"):
                raise ValueError("key 'auth.public_url': expected https://host[:port] (no "
                                 f"path), got {self.public_url!r}")

    def base_url(self, http_addr: str) -> str:
        """Where people reach the pages: the public URL, else the HTTP address."""
        return (self.public_url or f"http://{http_addr}").rstrip("/")


@dataclass(frozen=True)
class Config:
    """Everything a server process needs."""

    database_url: str = ""
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    # "5" in production; "3.1.1" only for the demo's in-process broker, which lacks MQTT 5
    # (then one collector subscribes without the shared subscription).
    mqtt_protocol: str = "5"
    mqtt_username: str = ""
    mqtt_password: str = ""
    # mqtts:// only: the CA the broker's certificate is checked against ("" is the system's
    # store), and a client certificate (CN "collector", hourglass pki issue --host collector)
    # with its key, for a broker that takes the certificate's CN as the user name.
    mqtt_ca_file: str = ""
    mqtt_cert_file: str = ""
    mqtt_key_file: str = ""
    http_addr: str = "127.0.0.1:8080"
    collector: CollectorConfig = field(default_factory=CollectorConfig)
    dispatcher: DispatcherConfig = field(default_factory=DispatcherConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)

    def validate(self) -> None:
        """Check URL shapes so a typo fails at start, not at first use."""
        mqtt = urlparse(self.mqtt_url)
        if mqtt.scheme not in ("mqtt", "mqtts") or not mqtt.hostname:
            raise ValueError(
                f"key 'mqtt_url' (HOURGLASS_MQTT_URL): expected mqtt://host:port or "
                f"mqtts://host:port, got {self.mqtt_url!r}"
            )
        if bool(self.mqtt_cert_file) != bool(self.mqtt_key_file):
            raise ValueError("keys 'mqtt_cert_file' and 'mqtt_key_file' (HOURGLASS_MQTT_CERT_FILE, "
                             "HOURGLASS_MQTT_KEY_FILE): a client certificate needs its key")
        if mqtt.scheme == "mqtt" and (self.mqtt_ca_file or self.mqtt_cert_file):
            raise ValueError("key 'mqtt_ca_file'/'mqtt_cert_file': TLS files need an mqtts:// "
                             f"mqtt_url, got {self.mqtt_url!r}")
        if self.mqtt_protocol not in ("5", "3.1.1"):
            raise ValueError(
                f"key 'mqtt_protocol': expected 5 or 3.1.1, got {self.mqtt_protocol!r}")
        host, _, port = self.http_addr.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"key 'http_addr' (HOURGLASS_HTTP_ADDR): expected host:port, "
                             f"got {self.http_addr!r}")
        if self.database_url and not self.database_url.startswith(("postgresql://", "postgres://")):
            raise ValueError(
                "key 'database_url' (HOURGLASS_DATABASE_URL): expected a libpq URL such as "
                "postgresql://user@host:5432/dbname"
            )

    def require_database(self) -> str:
        """The database URL, or a clear error naming the key and the variable."""
        if not self.database_url:
            from agent.settings import ConfigError

            raise ConfigError(
                "key 'database_url' is not set: set HOURGLASS_DATABASE_URL "
                "(e.g. postgresql://postgres@127.0.0.1:5432/hourglass) or put it in the "
                "--config file; `hourglass demo` starts a private database by itself"
            )
        return self.database_url

    @property
    def mqtt_tls_files(self) -> tuple[str | None, str | None, str | None]:
        """CA, client certificate and key for the broker connection (None: not set)."""
        return self.mqtt_ca_file or None, self.mqtt_cert_file or None, self.mqtt_key_file or None

    @property
    def mqtt_v5(self) -> bool:
        """Whether to speak MQTT 5 (shared subscriptions, session expiry)."""
        return self.mqtt_protocol == "5"

    @property
    def http_host(self) -> str:
        """Host part of http_addr."""
        return self.http_addr.rpartition(":")[0]

    @property
    def http_port(self) -> int:
        """Port part of http_addr."""
        return int(self.http_addr.rpartition(":")[2])


def load_config(file: Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Load the server configuration; raise ConfigError naming file and key."""
    return load(Config, file, os.environ if env is None else env, env_prefix="HOURGLASS_")


def mqtt_endpoint(url: str) -> tuple[str, int, bool]:
    """Split an mqtt:// or mqtts:// URL into host, port and whether TLS is on."""
    parsed = urlparse(url)
    tls = parsed.scheme == "mqtts"
    return parsed.hostname or "127.0.0.1", parsed.port or (8883 if tls else 1883), tls
