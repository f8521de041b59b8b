"""Persists what the rules found: predictions (no SLA clock) and the stateful rules' state.

One open prediction per (host, component, prediction) by a unique partial index; a repeat
updates its last evidence, last_seen and count, never opens a second one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from collector import sqlarrays, stateful
from collector.model import Detection, Message

Conn = psycopg.Connection[tuple[Any, ...]]

# Rule states parsed, by their JSON text: a batch reads every state of its hosts (a dozen
# a message, nearly all unchanged since the last batch), and parsing each again was most
# of reading them. The same text is the same state; the rules never change a state in
# place (tests/collector/test_stateful.py), so one parsed value serves every reader.
_PARSED: dict[str, stateful.State] = {}
_PARSED_MAX = 50_000  # then forgotten at once (a larger fleet parses what it reads, as before)


def _parsed(text: str) -> stateful.State:
    state = _PARSED.get(text)
    if state is None:
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        state = _PARSED[text] = json.loads(text)
    return state

_PREDICTION = """
INSERT INTO predictions (host_id, site_id, customer_id, component, kind, prediction, rule, slot,
                         serial, detected_at, last_seen, evidence, last_evidence)
SELECT h.id, h.site_id, h.customer_id, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s
FROM hosts h WHERE h.id = %s
ON CONFLICT (host_id, component, prediction) WHERE state = 'open' DO UPDATE SET
    repeats = predictions.repeats + 1,
    last_evidence = CASE WHEN EXCLUDED.last_seen >= predictions.last_seen
                         THEN EXCLUDED.last_evidence ELSE predictions.last_evidence END,
    last_seen = GREATEST(predictions.last_seen, EXCLUDED.last_seen),
    detected_at = LEAST(predictions.detected_at, EXCLUDED.detected_at)
RETURNING id, (xmax = 0)
"""


def open_prediction(conn: Conn, d: Detection) -> int | None:
    """Open a prediction, or add this evidence to the open one; the id when newly opened."""
    evidence = Jsonb({**d.evidence, "seq": d.seq})
    row = conn.execute(_PREDICTION, (
        d.component, d.kind, d.failure, d.rule, d.slot, d.serial, d.detected_at, d.detected_at,
        evidence, evidence, d.host)).fetchone()
    return int(row[0]) if row is not None and row[1] else None


def evaluate(conn: Conn, messages: Sequence[Message],
             params: stateful.RuleParams) -> list[tuple[str, Detection]]:
    """Run the stateful rules over a batch's accepted telemetry; store the changed states.

    The caller holds the hosts' locks, so the states read here are current.
    """
    if not messages:
        return []
    hosts = sorted({m.host for m in messages})
    states: dict[stateful.Key, stateful.Stored] = {
        (r[0], r[1], r[2]): (r[3], _parsed(r[4])) for r in conn.execute(
            "SELECT host_id, component, rule, seq, state::text FROM rule_state"
            " WHERE host_id = ANY(" + sqlarrays.NAMES + ")", (sqlarrays.names(hosts),)).fetchall()}
    changed: dict[stateful.Key, stateful.Stored] = {}
    found: list[tuple[str, Detection]] = []
    for m in sorted(messages, key=lambda m: (m.host, m.seq)):
        updates, got = stateful.evaluate(states, m, params)
        states.update(updates)
        changed.update(updates)
        found.extend(got)
    if changed:
        keys = sorted(changed)
        conn.execute(
            "INSERT INTO rule_state (host_id, component, rule, seq, state)"
            " SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::bigint[], %s::jsonb[])"
            " ON CONFLICT (host_id, component, rule) DO UPDATE SET seq = EXCLUDED.seq,"
            " state = EXCLUDED.state, updated_at = now() WHERE rule_state.seq < EXCLUDED.seq",
            ([k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys],
             [changed[k][0] for k in keys], [Jsonb(changed[k][1]) for k in keys]))
    return found


_BMC_POWER = """
INSERT INTO bmc_power (host_id, power_on, ts, reporter)
SELECT DISTINCT ON (srv.host_id) srv.host_id, u.p, u.t, u.r
FROM unnest(%s::text[], %s::boolean[], %s::timestamptz[]) AS u(r, p, t)
JOIN host_state bmc ON bmc.host_id = u.r
JOIN host_state srv ON srv.chassis->>'serial' = bmc.chassis->>'serial' AND srv.host_id <> u.r
WHERE bmc.chassis->>'serial' IS NOT NULL
ORDER BY srv.host_id, u.t DESC
ON CONFLICT (host_id) DO UPDATE SET power_on = EXCLUDED.power_on, ts = EXCLUDED.ts,
    reporter = EXCLUDED.reporter
WHERE bmc_power.ts <= EXCLUDED.ts
"""


def bmc_power(conn: Conn, messages: Sequence[Message]) -> None:
    """Record each BMC's newest bmc.power_on for the servers of its chassis (by serial)."""
    words: dict[str, tuple[bool, Any]] = {}
    for m in messages:
        if m.set_key and "bmc.power_on" not in m.set_key:
            continue  # its readings' names, all in one string: a server's message, not a BMC's
        for r in m.telemetry.readings:
            if r.metric == "bmc.power_on" and (m.host not in words or words[m.host][1] < m.ts):
                words[m.host] = (r.value != 0, m.ts)
    if words:
        hosts = sorted(words)
        conn.execute(_BMC_POWER, (hosts, [words[h][0] for h in hosts],
                                  [words[h][1] for h in hosts]))
