"""Whether the collectors' input flows: read from collector_status and ingest_gaps.

Each collector writes collector_status every few seconds: a collector not ready says why
(broker disconnected, nothing heard, messages waiting, the database), and while host-down
and facility detection wait for our own input that is our outage, shown to operators,
never a customer's incident. A row older than STALE_S is a collector that stopped writing:
it died, or lost the database. GET /api/v1/ingest and /metrics both read it here.
"""

from datetime import datetime, timedelta
from typing import Any

from pydantic import AwareDatetime, BaseModel

from schemas import coverage

STALE_S = 30.0  # six of a collector's 5 s sweep passes without a word


class CollectorState(BaseModel):
    """One collector's last word on its input."""

    id: str
    state: str  # ready | not_ready | silent
    reasons: list[str]
    detection_paused: bool
    held_sites: list[str]
    oldest_unacked_s: float
    updated_at: AwareDatetime
    age_s: float


class UnfilledGap(BaseModel):
    """A run of a host's messages the broker acknowledged, no collector stored, and its
    agent has not resent (collector.gaps)."""

    host: str
    first_seq: int
    last_seq: int
    missing: int
    seen_at: AwareDatetime
    requests: int
    reason: str


class Gaps(BaseModel):
    """Seq gaps: open (the agents are being asked), unfilled (given up, still asked for
    until the agents' retention ends), filled in the last 24 h by a resend or a late
    arrival, and the worst unfilled ones."""

    open: int
    unfilled: int
    filled_24h: int
    missing_seqs: int
    unfilled_gaps: list[UnfilledGap]


class CoverageShort(BaseModel):
    """Hosts whose agents cannot watch a kind of part, and why (their latest birth)."""

    probe: str
    status: str
    hosts: int
    sentence: str  # "no disk health on 42 hosts: smartctl missing (install smartmontools)"
    sample: list[str]  # the first hosts, by name


class Ingest(BaseModel):
    """Whether work flows in: ok only when some collector is ready, none is in doubt and no
    site is held as silent at once. Gaps do not make it not ok (work flows); an unfilled
    one is an alert of its own."""

    ok: bool
    summary: str
    collectors: list[CollectorState]
    gaps: Gaps
    coverage: list[CoverageShort] = []


def coverage_short(conn: Any) -> list[CoverageShort]:
    """Each (probe, status) that leaves parts unwatched, with its hosts."""
    rows = conn.execute("SELECT probe, status, count(*) AS n, (array_agg(host_id ORDER BY"
                        " host_id))[1:10] AS sample FROM probe_coverage WHERE status = ANY(%s)"
                        " GROUP BY probe, status ORDER BY count(*) DESC, probe",
                        (list(coverage.SHORT),)).fetchall()
    return [CoverageShort(probe=r["probe"], status=r["status"], hosts=r["n"],
                          sentence=coverage.sentence(r["probe"], r["status"], r["n"]),
                          sample=list(r["sample"])) for r in rows]


def gaps(conn: Any, now: datetime) -> Gaps:
    """Open and unfilled gaps of the last day, and the latest unfilled ones."""
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE state = 'open') AS open,"
        " count(*) FILTER (WHERE state = 'unfilled') AS unfilled,"
        " count(*) FILTER (WHERE state = 'filled' AND closed_at > %(since)s) AS filled,"
        " COALESCE(sum(missing) FILTER (WHERE state <> 'filled'), 0) AS missing"
        " FROM ingest_gaps WHERE state <> 'filled' AND seen_at > %(since)s"
        " OR closed_at > %(since)s", {"since": now - timedelta(days=1)}).fetchone()
    worst = conn.execute(
        "SELECT host_id, first_seq, last_seq, missing, seen_at, requests, reason"
        " FROM ingest_gaps WHERE state = 'unfilled' AND seen_at > %s"
        " ORDER BY seen_at DESC LIMIT 10", (now - timedelta(days=1),)).fetchall()
    return Gaps(open=row["open"], unfilled=row["unfilled"], filled_24h=row["filled"],
                missing_seqs=row["missing"], unfilled_gaps=[UnfilledGap(
                    host=r["host_id"], first_seq=r["first_seq"], last_seq=r["last_seq"],
                    missing=r["missing"], seen_at=r["seen_at"], requests=r["requests"],
                    reason=r["reason"] or "") for r in worst])


def read(conn: Any, now: datetime) -> Ingest:
    """The collectors' states at now, worst first."""
    rows = conn.execute("SELECT client_id, ready, detection_paused, reasons, held_sites,"
                        " oldest_unacked_s, updated_at FROM collector_status"
                        " ORDER BY client_id").fetchall()
    out: list[CollectorState] = []
    for r in rows:
        age = max(0.0, (now - r["updated_at"]).total_seconds())
        state = "silent" if age > STALE_S else "ready" if r["ready"] else "not_ready"
        reasons = list(r["reasons"]) if state != "silent" else [
            f"no word from this collector for {age:.0f} s: it stopped or lost the database"]
        out.append(CollectorState(id=r["client_id"], state=state, reasons=reasons,
                                  detection_paused=bool(r["detection_paused"]) or
                                  state == "silent", held_sites=list(r["held_sites"]),
                                  oldest_unacked_s=float(r["oldest_unacked_s"]),
                                  updated_at=r["updated_at"], age_s=round(age, 1)))
    out.sort(key=lambda c: ({"silent": 0, "not_ready": 1, "ready": 2}[c.state], c.id))
    held = any(c.held_sites for c in out)
    return Ingest(ok=bool(out) and all(c.state == "ready" for c in out) and not held,
                  summary=_summary(out), collectors=out, gaps=gaps(conn, now),
                  coverage=coverage_short(conn))


def _summary(cs: list[CollectorState]) -> str:
    """One line for the operator."""
    if not cs:
        return "No collector has reported: start `hourglass collector run`"
    bad = [c for c in cs if c.state != "ready"]
    held = sorted({site for c in cs for site in c.held_sites})
    if not bad and held:
        return (f"Sites silent at once, not judged: {', '.join(held)}. Nearly all their hosts "
                "stopped at once, over several racks: check the site's uplink and the "
                "broker's listener; no incident opens for them meanwhile.")
    if not bad:
        return f"Ingest flowing: {len(cs)} collector{'s' if len(cs) > 1 else ''} ready"
    first = bad[0]
    why = "; ".join(first.reasons) or "not ready"
    more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
    paused = " Host-down and facility detection wait for it." if first.detection_paused else ""
    return f"Ingest impaired: {first.id}: {why}{more}.{paused}"
