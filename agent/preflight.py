"""What ``hourglass-agent check`` verifies beyond parsing: the files a config names, and
what each probe can watch on this host (the tool it needs, its permission, its devices)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from agent.config import AgentConfig
from agent.core import collect
from agent.probes.base import Probe
from agent.probes.coverage import Coverage
from agent.root import Root


def _readable(path: str) -> str | None:
    """Why a file cannot be read, or None."""
    p = Path(path)
    if not p.is_file():
        return f"{path} does not exist or is not a file"
    if not os.access(p, os.R_OK):
        return f"{path} is not readable by this user"
    return None


def _writable_dir(path: Path) -> str | None:
    """Why the spool's directory cannot be created or written, or None."""
    probe = path
    while not probe.exists():  # the daemon creates missing directories on start
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is not a directory"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe} is not writable by this user (systemd's StateDirectory= makes it)"
    return None


def problems(cfg: AgentConfig) -> list[tuple[str, str]]:
    """(key, reason) for every named file the agent could not use."""
    out: list[tuple[str, str]] = []
    for key in ("ca_file", "cert_file", "key_file"):
        value = getattr(cfg.tls, key)
        if value is not None and (why := _readable(value)):
            out.append((f"tls.{key}", why))
    if cfg.tls != type(cfg.tls)() and not cfg.broker[2]:
        out.append(("mqtt_url", "tls files are set but the URL is mqtt://, not mqtts://"))
    spool = Path(cfg.spool_path)
    if spool.exists() and not os.access(spool, os.R_OK | os.W_OK):
        out.append(("spool_path", f"{spool} is not readable and writable by this user"))
    elif not spool.exists() and (why := _writable_dir(spool.parent)):
        out.append(("spool_path", why))
    if not Path(cfg.root).is_dir():
        out.append(("root", f"{cfg.root} is not a directory"))
    return out


def coverage(probes: Iterable[Probe], root: Root) -> list[Coverage]:
    """Run each probe once; what each can watch here, as the birth reports it."""
    return list(collect(probes, root).coverage)


def coverage_line(c: Coverage) -> str:
    """One printed line: probe, status, why, and the package to install."""
    todo = f" -> install {c.package}" if c.package else ""
    return f"probe {c.probe:<8} {c.status:<17} {c.detail}{todo}"
