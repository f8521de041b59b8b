"""The server configuration as the dispatcher's pure rules take it.

hourglass/config.py reads and validates the file and the environment and knows nothing of
the dispatcher; this module turns its numbers into the domain's policies.
"""

from __future__ import annotations

from datetime import timedelta

from dispatcher.domain.credit import ClassPolicy
from dispatcher.domain.policy import TimerPolicy
from hourglass.config import CreditClassConfig, DispatcherConfig


def class_policy(c: CreditClassConfig) -> ClassPolicy:
    """The failure-class map as the pure credit module takes it."""
    return ClassPolicy(c.hardware_minutes, c.power_minutes, c.network_minutes,
                       frozenset(c.power_failures), frozenset(c.network_failures))


def timer_policy(d: DispatcherConfig) -> TimerPolicy:
    """The windows as the dispatcher's pure timer policy takes them."""
    return TimerPolicy(timedelta(minutes=d.ack_window_minutes),
                       timedelta(minutes=d.risk_lead_minutes),
                       timedelta(minutes=d.verify_window_minutes),
                       auto_close_after=timedelta(hours=d.auto_close_hours),
                       credit_classes=class_policy(d.credit),
                       proactive_off_shift=d.proactive_off_shift_window)
