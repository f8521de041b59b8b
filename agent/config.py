"""The agent's typed, frozen configuration: YAML, then HOURGLASS_AGENT_* overrides."""

from __future__ import annotations

import dataclasses
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from agent.probes import default_registry
from agent.probes.base import Limits
from agent.profiles import PROFILES
from agent.settings import ConfigError, build, load

ENV_PREFIX = "HOURGLASS_AGENT_"
#: The envelope's `ident` pattern (schemas/mqtt/envelope.json): host and site are topic levels.
_IDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
#: Probes run when the file names none; the others must be enabled on purpose.
DEFAULT_PROBES = ("system", "smart", "edac", "mdstat", "ipmi", "mce", "nic", "hwmon")
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
class ProxyTarget:
    """One BMC or PDU polled over SNMP in proxy mode, published as host ``host``."""

    host: str
    address: str
    #: The device's site (topic level); the agent's own site when empty.
    site: str | None = None
    port: int = 161
    version: str = "v2c"
    community: str | None = None
    user: str | None = None
    auth_protocol: str | None = None
    auth_key: str | None = None
    priv_protocol: str | None = None
    priv_key: str | None = None
    #: SNMPv3 context name (some devices, and snmpsim, select the data by it).
    context: str = ""
    profile: str = "hp-onboard-administrator"
    #: A BMC answers a full walk in about a second; once a minute keeps the hour promise
    #: comfortable without loading slow management controllers.
    interval_s: float = 60.0
    timeout_s: float = 2.0
    retries: int = 1

    def problems(self) -> list[tuple[str, str]]:
        """(key, what is wrong) for every value the proxy cannot poll with."""
        # late: agent.snmp loads pysnmp (about 0.3 s), which an agent without proxy targets
        # never needs
        from agent.snmp import AUTH_PROTOCOLS, PRIV_PROTOCOLS

        found: list[tuple[str, str]] = []
        for key in ("host", "site"):
            value = getattr(self, key)
            if value is not None and not _IDENT.match(value):
                found.append((key, f"{value!r} must match {_IDENT.pattern} (a topic level)"))
        if not self.address.strip():
            found.append(("address", "the device's IP address or name is required"))
        if not 1 <= self.port <= 65535:
            found.append(("port", f"{self.port} is not a UDP port (1-65535)"))
        if self.version not in ("v2c", "v3"):
            found.append(("version", f"{self.version!r} must be v2c or v3"))
        if self.version == "v2c" and not self.community:
            found.append(("community", "SNMP v2c needs a community"))
        if self.version == "v3":
            found += self._v3_problems(AUTH_PROTOCOLS, PRIV_PROTOCOLS)
        if self.profile not in PROFILES:
            found.append(("profile", f"unknown profile {self.profile!r}; known: "
                                     f"{', '.join(sorted(PROFILES))}"))
        for key, low in (("interval_s", 1.0), ("timeout_s", 0.1), ("retries", 0)):
            if getattr(self, key) < low:
                found.append((key, f"must be at least {low}"))
        return found

    def _v3_problems(
        self, auth: Mapping[str, object], priv: Mapping[str, object]
    ) -> list[tuple[str, str]]:
        """SNMPv3 user, protocols and keys (RFC 3414: keys of at least 8 characters)."""
        found: list[tuple[str, str]] = []
        if not self.user:
            found.append(("user", "SNMP v3 needs a user"))
        if self.auth_protocol is not None and self.auth_protocol not in auth:
            found.append(("auth_protocol", f"{self.auth_protocol!r}; known: {', '.join(auth)}"))
        if self.priv_protocol is not None and self.priv_protocol not in priv:
            found.append(("priv_protocol", f"{self.priv_protocol!r}; known: {', '.join(priv)}"))
        for key in ("auth_key", "priv_key"):
            value = getattr(self, key)
            if value is not None and len(value) < 8:
                found.append((key, "SNMP v3 keys are at least 8 characters (RFC 3414)"))
        if self.priv_key and not self.auth_key:
            found.append(("priv_key", "privacy needs authentication: set auth_key too"))
        return found


@dataclass(frozen=True)
class ProxyConfig:
    """Proxy mode: the devices to poll, and where to receive their traps."""

    targets: tuple[ProxyTarget, ...] = ()
    #: host:port to receive SNMP v2c traps on (proxy mode only); none when empty.
    traps: str | None = None
    trap_community: str = "public"

    def validate(self) -> None:
        """The trap address must be host:port."""
        if self.traps:
            host, _, port = self.traps.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise _bad("proxy.traps", f"{self.traps!r} must be host:port, e.g. 0.0.0.0:162")


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
    #: What the broker acknowledged stays this long (inside the cap) for the collector's
    #: resend command: a broker that restarts can lose an acknowledged message.
    spool_retention_s: float = 24 * 3600.0
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
    #: Proxy mode: BMCs and PDUs polled over SNMP, each published as its own host.
    proxy: ProxyConfig = field(default_factory=ProxyConfig)
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
            ("spool_retention_s", 0.0),
        ):
            if getattr(self, key) < low:
                raise _bad(key, f"must be at least {low}")
        if self.spool_cap_bytes < 1024 * 1024:
            raise _bad("spool_cap_bytes", "must be at least 1 MiB")
        self._validate_probes()

    def _validate_probes(self) -> None:
        """Every enabled probe must be a registered one."""
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
    env = os.environ if env is None else env
    if file is None:
        return load(AgentConfig, file, env, env_prefix=ENV_PREFIX)
    # proxy.targets is a list of mappings, which the generic loader does not build
    data = dict(_read_yaml(file))
    proxy = data.get("proxy")
    targets = proxy.get("targets") if isinstance(proxy, Mapping) else None
    if isinstance(proxy, Mapping):
        data["proxy"] = {k: v for k, v in proxy.items() if k != "targets"}
    cfg = build(AgentConfig, data, env, source=str(file), env_prefix=ENV_PREFIX)
    if targets is None:
        return cfg
    built = _proxy_targets(targets, str(file), cfg.site)
    return dataclasses.replace(cfg, proxy=dataclasses.replace(cfg.proxy, targets=built))


def _read_yaml(file: Path) -> Mapping[str, Any]:
    """The file's top-level mapping; errors name the file (as settings.load does)."""
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: not valid YAML: {exc}") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"{file}: the top level must be a mapping of keys")
    return data


def _proxy_targets(raw: object, source: str, site: str) -> tuple[ProxyTarget, ...]:
    """Build and check ``proxy.targets``; every error names the file and the key."""
    if not isinstance(raw, list):
        raise ConfigError(f"{source}: key 'proxy.targets': expected a list of targets")
    out: list[ProxyTarget] = []
    for i, item in enumerate(raw):
        where = f"proxy.targets[{i}]"
        if not isinstance(item, Mapping):
            raise ConfigError(f"{source}: key '{where}': expected a mapping (host, address, ...)")
        target = build(ProxyTarget, item, {}, source=source, env_prefix="", path=where + ".")
        target = dataclasses.replace(target, site=target.site or site)
        for key, why in target.problems():
            raise ConfigError(f"{source}: key '{where}.{key}': {why}")
        if any(t.host == target.host for t in out):
            raise ConfigError(f"{source}: key '{where}.host': {target.host!r} is listed twice")
        out.append(target)
    return tuple(out)
