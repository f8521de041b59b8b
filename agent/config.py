"""The agent's typed, frozen configuration: YAML, then HOURGLASS_AGENT_* overrides."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from agent.probes.base import Limits
from agent.settings import load

ENV_PREFIX = "HOURGLASS_AGENT_"
#: The envelope's `ident` pattern (schemas/mqtt/envelope.json): host and site are topic levels.
_IDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
#: Probes run when the file names none; the others must be enabled on purpose.
DEFAULT_PROBES = ("system", "smart", "edac", "mdstat", "ipmi")
_DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


def _bad(key: str, why: str) -> ValueError:
    """A validation error naming the key and its environment variable."""
    env = ENV_PREFIX + key.upper().replace(".", "_").split("[")[0]
    return ValueError(f"key '{key}' (or {env}): {why}")


def short_hostname() -> str:
    """This machine's host name without its domain."""
    return socket.gethostname().split(".", 1)[0] or "localhost"


@dataclass(frozen=True)
class TLSConfig:
    """Files for mqtts://: a CA bundle (system store when empty) and a client certificate."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None


@dataclass(frozen=True)
class AgentConfig:
    """Everything the agent daemon needs; validated when built."""

    site: str
    host: str = field(default_factory=short_hostname)
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    username: str | None = None
    password: str | None = None
    tls: TLSConfig = field(default_factory=TLSConfig)
    interval_s: float = 30.0
    smart_interval_s: float = 900.0
    spool_path: str = "/var/lib/hourglass-agent/spool.db"
    #: 64 MiB holds about a day of 30 s telemetry of a large server while the broker is away.
    spool_cap_bytes: int = 64 * 1024 * 1024
    root: str = "/"
    probes: tuple[str, ...] = DEFAULT_PROBES
    #: MQTT keepalive; the broker declares the agent lost after 1.5 times this.
    keepalive_s: int = 60
    #: After an outage, spooled telemetry goes at most this fast (events and births are not
    #: held back): a day of 30 s telemetry drains in under 5 min without a fleet that comes
    #: back together flooding the collectors (about 4-5k msg/s each, design.md).
    telemetry_drain_per_s: float = 10.0
    #: The longest wait between connection attempts (exponential backoff with jitter).
    backoff_max_s: float = 60.0
    #: Thresholds of the probes' predictions (ECC rate, sustained heat, slow rebuild, ...).
    limits: Limits = field(default_factory=Limits)

    def validate(self) -> None:
        """Reject values the agent cannot run with; the message names the key."""
        for key in ("host", "site"):
            if not _IDENT.match(getattr(self, key)):
                raise _bad(
                    key, f"{getattr(self, key)!r} must match {_IDENT.pattern} (a topic level)"
                )
        url = urlsplit(self.mqtt_url)
        if url.scheme not in _DEFAULT_PORTS or not url.hostname:
            raise _bad(
                "mqtt_url", f"{self.mqtt_url!r} must be mqtt://host[:port] or mqtts://host[:port]"
            )
        try:
            url.port  # noqa: B018 - urlsplit checks the port only when it is read
        except ValueError:
            raise _bad("mqtt_url", f"bad port in {self.mqtt_url!r}") from None
        if (self.tls.cert_file is None) != (self.tls.key_file is None):
            raise _bad("tls.cert_file", "a client certificate needs tls.key_file too")
        for key, low in (
            ("interval_s", 0.1),
            ("smart_interval_s", 1.0),
            ("keepalive_s", 5),
            ("telemetry_drain_per_s", 0.1),
            ("backoff_max_s", 1.0),
        ):
            if getattr(self, key) < low:
                raise _bad(key, f"must be at least {low}")
        if self.spool_cap_bytes < 1024 * 1024:
            raise _bad("spool_cap_bytes", "must be at least 1 MiB")
        self._validate_probes()

    def _validate_probes(self) -> None:
        """Every enabled probe must be a registered one."""
        from agent.probes import default_registry  # late: the registry imports the probes

        known = default_registry().names()
        for i, name in enumerate(self.probes):
            if name not in known:
                raise _bad(f"probes[{i}]", f"unknown probe {name!r}; known: {', '.join(known)}")

    @property
    def broker(self) -> tuple[str, int, bool]:
        """Host, port and whether TLS is on, from mqtt_url."""
        url = urlsplit(self.mqtt_url)
        return (
            url.hostname or "127.0.0.1",
            url.port or _DEFAULT_PORTS[url.scheme],
            (url.scheme == "mqtts"),
        )


def load_config(file: Path | None, env: Mapping[str, str] | None = None) -> AgentConfig:
    """Load the agent configuration; raises settings.ConfigError naming file and key."""
    return load(AgentConfig, file, os.environ if env is None else env, env_prefix=ENV_PREFIX)
