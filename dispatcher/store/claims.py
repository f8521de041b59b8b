"""Claims in the database: open, load, apply a step decided by domain.claims, tell people.

Every step is a claim event (the claim's timeline) and, in the same transaction, an outbox
message to the customer's account team (and the owning manager), so nothing is told twice
and nothing decided goes untold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from dispatcher import views
from dispatcher.domain import claims as rules
from dispatcher.store import Conn, outbox, tell
from schemas.states import ClaimState

CLAIM_COLUMNS = ("id, customer_id, incident_id, text, state, manager_id, plan, opened_at,"
                 " updated_at, notice_at, notice_effective, notice_ended_at")


class ClaimRefused(Exception):
    """A claim step that cannot happen: an HTTP status and what to do."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


@dataclass(frozen=True)
class Loaded:
    """A claim row and the rules' view of it."""

    row: dict[str, Any]
    claim: rules.Claim


def query(conn: Conn, sql: str, args: Sequence[Any] | dict[str, Any] = ()) -> Any:
    """Run a query returning dicts, whatever the connection's row factory."""
    return conn.cursor(row_factory=dict_row).execute(sql, args)


def is_person(conn: Conn, person: str) -> bool:
    """Whether an id names someone who can own an action: staff or an account person."""
    row = query(conn, "SELECT (EXISTS (SELECT 1 FROM technicians WHERE id = %(p)s) OR EXISTS"
                   " (SELECT 1 FROM account_people WHERE id = %(p)s)) AS known", {"p": person}
             ).fetchone()
    return bool(row and row["known"])


def check_owners(conn: Conn, items: Sequence[rules.Item]) -> None:
    """Refuse items whose owner nobody knows."""
    unknown = sorted({i.owner for i in items if not is_person(conn, i.owner)})
    if unknown:
        raise ClaimRefused(422, f"unknown owner(s) {unknown}: an owner is a person id from the "
                                "fleet file (a technician, manager, executive or account person)")


def items(conn: Conn, claim: int, plan: int) -> tuple[rules.Item, ...]:
    """The items of one plan, in order."""
    return tuple(rules.Item(r["text"], r["owner"], r["due_at"], r["done_at"]) for r in query(
        conn, "SELECT text, owner, due_at, done_at FROM claim_plan_items WHERE claim_id = %s"
              " AND plan = %s ORDER BY n", (claim, plan)))


def load(conn: Conn, claim: int, lock: bool = False) -> Loaded:
    """One claim (row-locked when `lock`), or ClaimRefused 404."""
    row = query(conn, f"SELECT {CLAIM_COLUMNS} FROM claims WHERE id = %s"
                   + (" FOR UPDATE" if lock else ""), (claim,)).fetchone()
    if row is None:
        raise ClaimRefused(404, f"no claim {claim} visible to this token")
    return Loaded(row, rules.Claim(ClaimState(row["state"]), row["manager_id"],
                                   items(conn, claim, row["plan"])))


def open_claim(conn: Conn, customer: str, incident: int | None, text: str,
               actor: str, now: datetime) -> int:
    """Open an investigation, owned by the incident's site manager when there is one."""
    manager = None
    if incident is not None:
        row = query(conn, "SELECT s.manager_id FROM incidents i JOIN sites s ON s.id = i.site_id"
                       " WHERE i.id = %s AND i.customer_id = %s", (incident, customer)
                 ).fetchone()
        if row is None:
            raise ClaimRefused(422, f"incident {incident} is not one of your incidents; leave "
                                    "'incident' out to raise a claim about support in general")
        manager = row["manager_id"]
    got = query(conn, "INSERT INTO claims (customer_id, incident_id, text, manager_id, opened_at,"
                   " updated_at) VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
             (customer, incident, text, manager, now, now)).fetchone()
    claim = int(got["id"])
    record(conn, claim, now, actor, "opened",
           {"incident": incident, "manager": manager, "text": text})
    return claim


def decide(loaded: Loaded, action: rules.Action, now: datetime,
           item: int | None = None) -> ClaimState:
    """The state the step leads to, or ClaimRefused."""
    got = rules.decide(loaded.claim, action, now, item)
    if isinstance(got, rules.Refused):
        raise ClaimRefused(got.status, got.detail)
    return got.to


def set_state(conn: Conn, claim: int, state: ClaimState, now: datetime, **cols: Any) -> None:
    """Move the claim (and set extra columns) in the caller's transaction."""
    sets = "".join(f", {c} = %({c})s" for c in cols)
    conn.execute(f"UPDATE claims SET state = %(state)s, updated_at = %(now)s{sets}"
                 " WHERE id = %(id)s", {"state": state.value, "now": now, "id": claim, **cols})


def save_plan(conn: Conn, claim: int, plan: int, plan_items: Sequence[rules.Item]) -> None:
    """Write a new plan's items."""
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO claim_plan_items (claim_id, plan, n, text, owner, due_at)"
                        " VALUES (%s, %s, %s, %s, %s, %s)",
                        [(claim, plan, n, i.text, i.owner, i.due_at)
                         for n, i in enumerate(plan_items, 1)])


def record(conn: Conn, claim: int, at: datetime, actor: str, kind: str,
           detail: dict[str, Any]) -> None:
    """Append a claim event and queue its message to the account team and the owner."""
    ev = query(conn, "INSERT INTO claim_events (claim_id, at, actor, kind, detail)"
                  " VALUES (%s, %s, %s, %s, %s) RETURNING id",
            (claim, at, actor, kind, Jsonb(detail))).fetchone()
    row = query(conn, "SELECT c.customer_id, c.manager_id, c.state, c.text, k.account_manager,"
                   " (SELECT array_agg(person_id ORDER BY person_id) FROM account_team t"
                   "  WHERE t.customer_id = c.customer_id) AS team"
                   " FROM claims c JOIN customers k ON k.id = c.customer_id WHERE c.id = %s",
             (claim,)).fetchone()
    people = {p for p in [row["account_manager"], row["manager_id"], *(row["team"] or [])] if p}
    if kind == rules.Action.ASSIGN and detail.get("before"):
        people.add(str(detail["before"]))  # the owner a manager took the claim over from
    people.discard(actor.partition(":")[2])  # the one who acted needs no message about it
    subject = f"Claim #{claim} ({row['customer_id']}): {kind.replace('_', ' ')}"
    body = (f"Claim #{claim} by customer {row['customer_id']} is now '{row['state']}'.\n"
            f"Step: {kind} by {actor} at {views.ts(at)}.\n"
            + "".join(f"{k}: {v}\n" for k, v in detail.items() if v not in (None, "", []))
            + f"\nThe customer's words: {row['text']}\n")
    for person in sorted(people):
        outbox.enqueue(conn, recipient=person, reason=f"claim_{kind}", subject=subject,
                       body=body, ref=f"claim:{claim}:event:{ev['id']}", at=at)
    if not actor.startswith("customer:"):  # a step by our side: the customer is told too
        words = CUSTOMER_WORDS.get(kind, kind.replace("_", " "))
        tell.customer(conn, row["customer_id"], reason=f"claim_{kind}",
                      subject=f"[Hourglass] Your claim #{claim}: {words}",
                      body=(f"Your claim #{claim} ({row['text'][:80]}): {words}.\n"
                            + "".join(f"{k}: {v}\n" for k, v in detail.items()
                                      if k in CUSTOMER_DETAIL and v not in (None, "", []))
                            + "\nFollow and answer it on your status page."),
                      ref=f"claim:{claim}:event:{ev['id']}", at=at)


#: A step by our side, as the customer reads it.
CUSTOMER_WORDS = {"assigned": "a manager now owns the investigation",
                  "plan_presented": "an action plan awaits your answer",
                  "item_done": "an item of the plan is done",
                  "notice_ended": "your notice period has ended"}
CUSTOMER_DETAIL = frozenset({"manager", "plan", "items", "due", "item", "state",
                             "effective_at", "ended_at"})


def end_notices(conn: Conn, now: datetime, limit: int = 100) -> int:
    """Record, once each, that a claim's notice period has ended (its end date arrived):
    the claim event, its messages and the mark that it was done, in one transaction."""
    with conn.transaction():
        due = query(conn, "SELECT id, notice_effective, state FROM claims WHERE notice_ended_at"
                          " IS NULL AND notice_effective <= %s ORDER BY notice_effective, id"
                          " LIMIT %s FOR UPDATE SKIP LOCKED", (now, limit)).fetchall()
        for c in due:
            conn.execute("UPDATE claims SET notice_ended_at = %s WHERE id = %s", (now, c["id"]))
            record(conn, c["id"], now, "dispatcher", "notice_ended",
                   {"effective_at": views.ts(c["notice_effective"]), "ended_at": views.ts(now),
                    "state": c["state"]})
    return len(due)


def shown(conn: Conn, claim: int) -> dict[str, Any]:
    """The public shape of a claim: plan, timeline, notice and exit survey."""
    c = load(conn, claim).row
    plans: dict[int, list[dict[str, Any]]] = {}
    for r in query(conn, "SELECT plan, n, text, owner, due_at, done_at FROM claim_plan_items"
                      " WHERE claim_id = %s ORDER BY plan, n", (claim,)):
        plans.setdefault(r["plan"], []).append(
            {"n": r["n"], "text": r["text"], "owner": r["owner"], "due_at": views.ts(r["due_at"]),
             "done_at": views.ts(r["done_at"])})
    survey = query(conn, "SELECT score, comment, at FROM exit_surveys WHERE claim_id = %s",
                (claim,)).fetchone()
    return {
        **summary(c),
        "plan": plans.get(c["plan"], []),
        "earlier_plans": [{"plan": p, "items": v} for p, v in sorted(plans.items())
                          if p != c["plan"]],
        "exit_survey": None if survey is None else {
            "score": survey["score"], "comment": survey["comment"], "at": views.ts(survey["at"])},
        "timeline": [{"at": views.ts(r["at"]), "actor": r["actor"], "kind": r["kind"],
                      "detail": r["detail"]} for r in query(
            conn, "SELECT at, actor, kind, detail FROM claim_events WHERE claim_id = %s"
                  " ORDER BY at, id", (claim,))],
    }


def summary(c: dict[str, Any]) -> dict[str, Any]:
    """A claim row in a list."""
    return {"id": c["id"], "customer": c["customer_id"], "incident": c["incident_id"],
            "text": c["text"], "state": c["state"], "manager": c["manager_id"],
            "opened_at": views.ts(c["opened_at"]), "updated_at": views.ts(c["updated_at"]),
            "notice": None if c["notice_at"] is None else {
                "given_at": views.ts(c["notice_at"]),
                "effective_at": views.ts(c["notice_effective"]),
                "ended_at": views.ts(c["notice_ended_at"])}}
