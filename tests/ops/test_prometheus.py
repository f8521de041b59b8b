"""deploy/prometheus: the scrape config and the alert rules, checked by promtool, each rule
tested firing and quiet, and each metric they use present on a running system."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.ops.system import System
from tests.ops.test_metrics import promtool

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
RULES = DEPLOY / "rules" / "hourglass.yml"
METRIC = re.compile(r"\bhourglass_[a-z0-9_]+")


def rules() -> list[dict[str, Any]]:
    """Every alerting rule of the rule files."""
    out: list[dict[str, Any]] = []
    for path in sorted((DEPLOY / "rules").glob("*.yml")):
        out += [r for g in yaml.safe_load(path.read_text())["groups"] for r in g["rules"]]
    return out


def promtool_ok(*args: str) -> None:
    """Run promtool in deploy/prometheus; fail with its words."""
    done = subprocess.run([promtool(), *args], cwd=DEPLOY, capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_scrape_config_and_rules_pass_promtool() -> None:
    promtool_ok("check", "config", "prometheus.yml")
    promtool_ok("test", "rules", *(str(p.relative_to(DEPLOY))
                                   for p in sorted((DEPLOY / "tests").glob("*.yml"))))


def test_every_rule_has_a_case_that_fires_and_one_that_stays_quiet() -> None:
    fires: set[str] = set()
    quiet: set[str] = set()
    for path in (DEPLOY / "tests").glob("*.yml"):
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {r["alert"] for r in rules()}
    assert names - fires == set(), "rules with no case that fires"
    assert names - quiet == set(), "rules with no case that stays quiet"


def test_every_metric_a_rule_uses_is_on_the_running_system(system: System) -> None:
    used = {m for r in rules() for m in METRIC.findall(r["expr"])}
    assert used, "no hourglass_ metric found in the rules"
    assert sorted(used - system.metric_names()) == []


def test_operations_doc_says_what_every_alert_means_and_what_to_do() -> None:
    doc = (DEPLOY.parents[1] / "docs" / "operations.md").read_text()
    rows = {line.split("|")[1].strip(): line for line in doc.splitlines()
            if line.startswith("| Hourglass")}
    alerts = [r for r in rules() if "alert" in r]
    missing = [r["alert"] for r in alerts if r["alert"] not in rows]
    assert not missing, f"docs/operations.md's Alerts table lacks {missing}: add their rows"
    for r in alerts:
        action = re.sub(r"\{\{.*?\}\}", "…", r["annotations"]["action"]).replace("|", "\\|")
        assert action in rows[r["alert"]], f"{r['alert']}: the doc's action is not the rule's"
