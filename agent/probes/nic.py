"""Network ports from /sys/class/net: link, carrier, speed and error counters.

Only ports with a ``device`` link are hardware (loopback, bridges, veths, bonds and VLANs
have none). The probe remembers, in the agent's durable state, whether a port ever had
link and the highest speed it ran at, because a port without carrier is only a failure
when a cable was in it: a port that had link and lost carrier while the administrator
keeps it up fails (``nic_carrier_lost``); one running below its usual speed
(``nic_speed_low``) or whose error counters keep rising (``nic_errors_rising``) warns.
A port taken down on purpose (flags without IFF_UP) is never a problem.
"""

from __future__ import annotations

from collections import deque
from typing import ClassVar

from agent.messages import Component, ComponentState, Reading
from agent.probes.base import Memo, ProbeContext, ProbeResult, component_id
from agent.root import Root

NET = "sys/class/net"
#: /sys/class/net/X/flags bit IFF_UP: the administrator brought the interface up.
IFF_UP = 0x1
#: Counters read from statistics/ (the kernel's rtnl_link_stats64 names).
COUNTERS = ("rx_bytes", "tx_bytes", "rx_errors", "tx_errors", "rx_dropped", "tx_dropped")
#: Errors (rx + tx) added within ERRORS_WINDOW_S that mean a port is going bad: a few
#: errors an hour happen on healthy links; ten in an hour is a cable, optic or port fault.
ERRORS_RISING = 10
ERRORS_WINDOW_S = 3600.0


class NicProbe:
    """Physical network ports: readings, and states judged against their own history."""

    name: ClassVar[str] = "nic"

    def __init__(self, ctx: ProbeContext) -> None:
        """Durable memory of each port's link and speed; error samples in memory."""
        self.memo = Memo(ctx.state, "nic")
        self.monotonic = ctx.monotonic
        self._errors: dict[str, deque[tuple[float, int]]] = {}

    def collect(self, root: Root) -> ProbeResult:
        """One nic component per physical port."""
        proc = _proc_net_dev(root)
        return ProbeResult.merge(
            self._port(root, name, proc.get(name, {}))
            for name in root.listdir(NET)
            if root.exists(f"{NET}/{name}/device")
        )

    def _port(self, root: Root, name: str, proc: dict[str, int]) -> ProbeResult:
        """Readings, state and inventory of one port."""
        base = f"{NET}/{name}"
        cid = component_id("nic", name)
        oper = (root.read_text(f"{base}/operstate") or "unknown").strip()
        carrier = root.read_int(f"{base}/carrier")  # unreadable while the port is down
        speed = root.read_int(f"{base}/speed")  # -1 without link
        flags = int((root.read_text(f"{base}/flags") or "0x1").strip(), 16)
        counters = {}
        for c in COUNTERS:
            value = root.read_int(f"{base}/statistics/{c}")
            value = proc.get(c) if value is None else value
            if value is not None:
                counters[c] = value
        link = carrier == 1 if carrier is not None else oper == "up"
        readings = [Reading(cid, f"nic.{c}", float(v)) for c, v in counters.items()]
        readings += [
            Reading(cid, "nic.up", 1.0 if oper == "up" else 0.0),
            Reading(cid, "nic.carrier", 1.0 if link else 0.0),
        ]
        if speed is not None and speed > 0:
            readings.append(Reading(cid, "nic.speed_mbps", float(speed)))
        saved = self.memo.get(name) or {"had_link": False, "usual_speed": 0}
        status, failure, detail = self._judge(
            name, link, bool(flags & IFF_UP), speed, counters, saved
        )
        if link:
            saved = {
                "had_link": True,
                "usual_speed": max(saved["usual_speed"], speed if speed and speed > 0 else 0),
            }
        self.memo.put(name, saved)
        mac = (root.read_text(f"{base}/address") or "").strip()
        attrs = {k: v for k, v in (("mac", mac), ("speed_mbps", speed)) if v and v != -1}
        return ProbeResult(
            readings=tuple(readings),
            states=(ComponentState(cid, "nic", status, slot=name, failure=failure, detail=detail),),
            inventory=(Component(cid, "nic", slot=name, attrs=attrs),),
            evidence={
                cid: {
                    "source": NET,
                    "operstate": oper,
                    "carrier": carrier,
                    "speed": speed,
                    "flags": hex(flags),
                    **saved,
                    **counters,
                }
            },
        )

    def _judge(
        self,
        name: str,
        link: bool,
        admin_up: bool,
        speed: int | None,
        counters: dict[str, int],
        saved: dict[str, int | bool],
    ) -> tuple[str, str | None, str | None]:
        """Status, failure and detail of one port from what it did before."""
        rise = self._error_rise(name, counters.get("rx_errors", 0) + counters.get("tx_errors", 0))
        if not admin_up:
            return "ok", None, None  # taken down on purpose
        if not link and saved["had_link"]:
            return "failed", "nic_carrier_lost", "carrier lost on a port that had link"
        usual = int(saved["usual_speed"])
        if link and speed is not None and 0 < speed < usual:
            return "warning", "nic_speed_low", f"link at {speed} Mb/s, usually {usual} Mb/s"
        if rise >= ERRORS_RISING:
            return "warning", "nic_errors_rising", f"{rise} rx/tx errors in the last hour"
        return "ok", None, None

    def _error_rise(self, name: str, total: int) -> int:
        """Errors added within the last ERRORS_WINDOW_S (a counter reset starts afresh)."""
        now = self.monotonic()
        samples = self._errors.setdefault(name, deque())
        if samples and total < samples[-1][1]:
            samples.clear()  # the driver was reloaded or the host rebooted
        samples.append((now, total))
        while len(samples) > 1 and samples[1][0] <= now - ERRORS_WINDOW_S:
            samples.popleft()  # keep one sample at or before the window's start
        return total - samples[0][1]


def _proc_net_dev(root: Root) -> dict[str, dict[str, int]]:
    """/proc/net/dev counters per interface, for kernels or roots without statistics/."""
    # field positions: 8 receive (bytes packets errs drop ...) then 8 transmit
    fields = {
        "rx_bytes": 0,
        "rx_errors": 2,
        "rx_dropped": 3,
        "tx_bytes": 8,
        "tx_errors": 10,
        "tx_dropped": 11,
    }
    out = {}
    for line in (root.read_text("proc/net/dev") or "").splitlines()[2:]:
        # "  eth0: 1234 10 0 0 0 0 0 0 5678 20 0 0 0 0 0 0"
        name, _, rest = line.partition(":")
        values = rest.split()
        if len(values) >= 16:
            out[name.strip()] = {k: int(values[i]) for k, i in fields.items()}
    return out
