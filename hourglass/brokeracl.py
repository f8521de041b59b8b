"""The broker's access list from the fleet file: each host pinned to its own site and id.

Owns the text of `hourglass broker acl --fleet FILE` (Mosquitto's acl_file, and the same
rules as EMQX's file authorizer reads them, `--format emqx`). A host (its certificate CN or its
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


#: The collectors' rights, as (EMQX action, topic filters).
_COLLECTOR_EMQX = (("subscribe", ("hg/v1/#", "$share/hg-collectors/hg/v1/#")),
                   ("publish", ("hg/v1/_canary/#", "hg/v1/+/+/cmd/#")))


def render_emqx_acl(fleet: Fleet, collectors: Sequence[str] = (COLLECTOR,),
                    extra: str = "") -> str:
    """The same rules as EMQX's acl.conf (Erlang terms), ending in `{deny, all}.`."""
    out = ["%% Written by `hourglass broker acl --format emqx --fleet FILE`: regenerate it",
           "%% after editing the fleet file. Rules match top to bottom; the last denies all.",
           ""]
    for name in collectors:
        for action, topics in _COLLECTOR_EMQX:
            out.append(f"{{allow, {{username, {_q(name)}}}, {action}, "
                       f"[{', '.join(_q(t) for t in topics)}]}}.")
    for host in sorted(fleet.hosts, key=lambda h: (h.site, h.id)):
        own = f"hg/v1/{host.site}/{host.id}"
        out += [f"{{allow, {{username, {_q(host.id)}}}, publish, [{_q(own + '/#')}]}}.",
                f"{{allow, {{username, {_q(host.id)}}}, subscribe, [{_q(own + '/cmd/#')}]}}."]
    if extra:
        out += ["%% Appended verbatim (--append):", extra.rstrip("\n")]
    out += ["{deny, all}.", ""]
    return "\n".join(out)


def _q(text: str) -> str:
    """An Erlang string literal (ids and topics hold no quote or backslash: fleet ids)."""
    return '"' + text + '"'
