"""The broker's access list from the fleet file: each host pinned to its own site and id.

Owns the text of `hourglass broker acl --fleet FILE`. A host (its certificate CN or its
password user name) may write only `hg/v1/<its site>/<its id>/#` and read only its own
commands; a pattern such as `hg/v1/+/%u/#` would let it write under its id in any site,
which the collector would take for a host of that site. A user name the fleet file does not
declare gets no line at all, so Mosquitto refuses it everything.
"""

from __future__ import annotations

from collections.abc import Sequence

from dispatcher.fleet import Fleet

#: The collectors' shared identity (deploy/mosquitto: the password user, or a certificate CN).
COLLECTOR = "collector"

_COLLECTOR_RULES = """\
# Collectors read everything under hg/v1 (through the shared subscription).
topic read hg/v1/#
topic read $share/hg-collectors/hg/v1/#
# Each collector's canary (collector.liveness): a message every few seconds that the
# shared subscription delivers, so a collector that hears nothing knows its subscription
# is gone. No agent can write there: host ids never start with "_".
topic write hg/v1/_canary/#
# Commands to agents (schemas/mqtt/resend.json): a seq the broker acknowledged and then
# lost is asked for again on hg/v1/{site}/{host}/cmd/resend.
topic write hg/v1/+/+/cmd/#
"""


def render_acl(fleet: Fleet, collectors: Sequence[str] = (COLLECTOR,), extra: str = "") -> str:
    """The Mosquitto acl_file for ``fleet``: collectors first, then one block per host."""
    out = ["# Written by `hourglass broker acl --fleet FILE`: regenerate it after editing the",
           "# fleet file rather than editing this. A user with no block here may do nothing.",
           ""]
    for name in collectors:
        out += [f"user {name}", _COLLECTOR_RULES]
    out.append("# Hosts: each writes under its own site and id only, and reads its commands.")
    for host in sorted(fleet.hosts, key=lambda h: (h.site, h.id)):
        out += [f"user {host.id}", f"topic write hg/v1/{host.site}/{host.id}/#",
                f"topic read hg/v1/{host.site}/{host.id}/cmd/#", ""]
    if extra:
        out += ["# Appended verbatim (--append), e.g. an SNMP proxy's devices:",
                extra.rstrip("\n"), ""]
    return "\n".join(out)
