"""deploy/grafana: the dashboard's queries are PromQL promtool accepts, name only metrics a
running system serves, and use the datasource the provisioning defines."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.ops.system import System
from tests.ops.test_metrics import promtool
from tests.ops.test_prometheus import METRIC

GRAFANA = Path(__file__).resolve().parents[2] / "deploy" / "grafana"


def dashboards() -> dict[str, dict[str, Any]]:
    """Every provisioned dashboard, by file name."""
    return {p.name: json.loads(p.read_text()) for p in sorted((GRAFANA / "dashboards")
                                                                .glob("*.json"))}


def queries() -> list[str]:
    """Every query of every panel."""
    return [t["expr"] for d in dashboards().values() for p in d["panels"]
            for t in p.get("targets", [])]


def test_the_dashboard_covers_ingest_the_promise_and_notifications() -> None:
    text = " ".join(queries())
    for name in ("hourglass_collector_publish_to_commit_seconds_bucket",
                 "hourglass_promise_total", "hourglass_incidents_time_to_fix_seconds_bucket",
                 "hourglass_notifications_total", "hourglass_notification_delivery_seconds"):
        assert name in text


def test_every_query_is_promql_and_uses_the_provisioned_datasource(tmp_path: Path) -> None:
    sources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml")
                             .read_text())["datasources"]
    uids = {s["uid"] for s in sources}
    for d in dashboards().values():
        for p in d["panels"]:
            if p["type"] != "row":
                assert p["datasource"]["uid"] in uids, p["title"]
    # promtool parses PromQL only inside rules: each query becomes a recording rule
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query{i}", "expr": q} for i, q in enumerate(queries())]}]}
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump(rules))
    done = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "hourglass.yml")
                              .read_text())["providers"][0]
    assert provider["type"] == "file"


def test_every_metric_the_dashboard_queries_is_on_the_running_system(system: System) -> None:
    used = {m for q in queries() for m in METRIC.findall(q)}
    assert len(used) > 15
    assert sorted(used - system.metric_names()) == []
