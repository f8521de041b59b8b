"""systemd's notify protocol without libsystemd: READY, STOPPING and the watchdog.

A datagram to the unix socket named by $NOTIFY_SOCKET (a leading "@" names an abstract
socket). Without that variable (not under systemd, or Type= is not notify) every call is
a no-op, so the daemon runs the same everywhere.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Mapping


def _address(env: Mapping[str, str]) -> str | None:
    """The socket address from the environment, abstract names turned into "\\0name"."""
    addr = env.get("NOTIFY_SOCKET", "")
    if not addr or addr[0] not in "/@":
        return None
    return "\0" + addr[1:] if addr[0] == "@" else addr


def notify(state: str, env: Mapping[str, str] | None = None) -> bool:
    """Send one state line (e.g. "READY=1"); False when not under systemd or on error."""
    addr = _address(os.environ if env is None else env)
    if addr is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.sendto(state.encode(), addr)
    except OSError:
        return False  # a gone manager must not take the agent down
    return True


def watchdog_interval(env: Mapping[str, str] | None = None) -> float | None:
    """Seconds between WATCHDOG=1 pings: half of $WATCHDOG_USEC, when it is meant for us."""
    env = os.environ if env is None else env
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    pid = env.get("WATCHDOG_PID")
    if usec <= 0 or (pid and pid != str(os.getpid())):
        return None
    return usec / 1e6 / 2  # half the timeout, as sd_watchdog_enabled(3) advises


class Watchdog:
    """Pings systemd's watchdog at most once per interval from the daemon's loop."""

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """Read the interval once; no interval means pings do nothing."""
        self.env = dict(os.environ if env is None else env)
        self.interval = watchdog_interval(self.env)
        self.monotonic = monotonic
        self._next = 0.0

    def ping(self) -> None:
        """Send WATCHDOG=1 if it is due."""
        if self.interval is None:
            return
        now = self.monotonic()
        if now >= self._next:
            notify("WATCHDOG=1", self.env)
            self._next = now + self.interval

    def ready(self) -> None:
        """Tell systemd start-up is done."""
        notify("READY=1", self.env)

    def stopping(self) -> None:
        """Tell systemd a planned stop has begun."""
        notify("STOPPING=1", self.env)
