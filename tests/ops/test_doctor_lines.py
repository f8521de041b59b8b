"""The doctor's printed lines, its exit code and the coverage sentence (pure)."""

from __future__ import annotations

from hourglass.doctor import Check, line, verdict
from schemas.coverage import sentence


def test_a_line_says_what_to_do_only_when_not_ok() -> None:
    assert line(Check("smtp", "ok", "answers", "fix it")) == "ok    smtp                  answers"
    assert line(Check("smtp", "FAIL", "refused", "fix it")) == \
        "FAIL  smtp                  refused -> fix it"


def test_only_a_failure_fails() -> None:
    assert verdict([Check("a", "ok", ""), Check("b", "warn", ""), Check("c", "skip", "")]) == 0
    assert verdict([Check("a", "ok", ""), Check("b", "FAIL", "")]) == 1


def test_the_coverage_sentence() -> None:
    assert sentence("smart", "tool_missing", 42) == \
        "no disk health on 42 hosts: smartctl missing (install smartmontools)"
    assert sentence("ipmi", "permission_denied", 1).startswith(
        "no BMC sensors and event log on 1 host: ipmitool denied permission")
