"""Probe coverage, the contract between the agent's birth and what operators read: each
probe's status values, the tool and package behind it, and the sentence naming the hosts
whose coverage is short. Mirrored by schemas/mqtt/birth.json, schemas/sql/021 and
agent/probes/coverage.py (tests/ops/test_coverage.py keeps them in step). Pure."""

from __future__ import annotations

from dataclasses import dataclass

#: A probe's status in a birth: it reads its parts (working), or why it cannot.
STATUSES = ("working", "tool_missing", "permission_denied", "no_devices", "no_answer")
#: The statuses that leave parts unwatched; no_devices is a host without such parts.
SHORT = ("tool_missing", "permission_denied", "no_answer")


@dataclass(frozen=True)
class Watched:
    """What a probe watches and the tool (and its Debian package) it needs."""

    what: str
    tool: str
    package: str


PROBES = {
    "smart": Watched("disk health", "smartctl", "smartmontools"),
    "ipmi": Watched("BMC sensors and event log", "ipmitool", "ipmitool"),
}


def sentence(probe: str, status: str, hosts: int) -> str:
    """'no disk health on 42 hosts: smartctl missing (install smartmontools)'."""
    w = PROBES.get(probe, Watched(probe, probe, probe))
    why = {"tool_missing": f"{w.tool} missing (install {w.package})",
           "permission_denied": f"{w.tool} denied permission (run the agent as root, or "
                                "give it the disks' group)",
           "no_answer": f"{w.tool} did not answer (run `hourglass-agent check` there)"}
    noun = "host" if hosts == 1 else "hosts"
    return f"no {w.what} on {hosts} {noun}: {why.get(status, status)}"
