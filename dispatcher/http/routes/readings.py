"""The evidence of an incident as readings: the metric that crossed the rule, from hours
before detection up to now, with its threshold (dispatcher/domain/evidence.py decides which
metric and where the line is). Read from the `telemetry` view (docs/scaling.md), bucketed so
an answer holds at most evidence.MAX_POINTS points.

No `from __future__ import annotations` here: FastAPI reads the route annotations at runtime.
"""

import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query

from dispatcher import views
from dispatcher.domain import evidence
from dispatcher.http import models
from dispatcher.http.deps import Deps
from dispatcher.http.routes.incidents import visible

# The bad side's extreme per bucket: a spike above (or a drop below) the line is never
# averaged away.
_AGG = {"above": "max", "below": "min"}


def router(deps: Deps) -> APIRouter:
    """The readings route."""
    return _routes(deps.db, deps.who)


def _routes(db: Any, who_dep: Any) -> APIRouter:
    api = APIRouter()

    @api.get("/api/v1/incidents/{incident_id}/readings", response_model=models.Readings)
    def readings(incident_id: int, conn: db, who: who_dep,
                 hours: Annotated[float, Query(gt=0, le=evidence.MAX_HOURS,
                                               description="hours before detection")] = 6
                 ) -> dict[str, Any]:
        """The incident's evidence over time: one metric's readings, its threshold, the
        detection moment (a customer sees only its own incidents)."""
        row = visible(conn, who, incident_id)
        chart = evidence.chart(row["kind"], row["failure"], row["evidence"])
        start, end, bucket = evidence.window(row["detected_at"], hours, datetime.now(UTC))
        out: dict[str, Any] = {
            "incident": incident_id, "component": row["component"],
            "detected_at": views.ts(row["detected_at"]), "start": views.ts(start),
            "end": views.ts(end), "bucket_s": bucket, "metric": None, "label": None,
            "unit": None, "threshold": None, "bad": None, "points": []}
        if chart is None:
            return out
        agg = _AGG[chart.bad]
        rows = conn.execute(
            f"SELECT date_bin(%(bucket)s, time, %(start)s) AS at, {agg}(value) AS value"
            " FROM telemetry WHERE host_id = %(host)s AND component = %(component)s"
            " AND metric = %(metric)s AND time >= %(start)s AND time <= %(end)s"
            " AND telemetry_hour(time) >= telemetry_hour(%(start)s)"
            " AND telemetry_hour(time) <= telemetry_hour(%(end)s)"
            " GROUP BY 1 ORDER BY 1",
            {"bucket": timedelta(seconds=bucket), "start": start, "end": end,
             "host": row["host_id"], "component": row["component"],
             "metric": chart.metric}).fetchall()
        out.update(metric=chart.metric, label=chart.label, unit=chart.unit,
                   threshold=chart.threshold, bad=chart.bad,
                   points=[{"at": views.ts(r["at"]), "value": float(r["value"])}
                           for r in rows
                           if r["value"] is not None and math.isfinite(r["value"])])
        return out

    return api
