"""The dispatcher loop and what it runs: verification, assignment, timers, escalation,
facility incidents, proactive work, the auditor."""
