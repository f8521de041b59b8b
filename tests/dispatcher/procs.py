"""Real `hourglass dispatcher run` processes with seconds-scale windows.

Shared by the soak test (tests/dispatcher/test_soak.py) and the timer benchmark
(bench/timers): both start dispatchers as separate processes, so SIGKILL hits them for real.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def policy_env(ack_s: float, risk_lead_s: float, verify_s: float) -> dict[str, str]:
    """The timer windows, in seconds, as the HOURGLASS_* overrides (which are in minutes)."""
    return {"HOURGLASS_DISPATCHER_ACK_WINDOW_MINUTES": str(ack_s / 60),
            "HOURGLASS_DISPATCHER_RISK_LEAD_MINUTES": str(risk_lead_s / 60),
            "HOURGLASS_DISPATCHER_VERIFY_WINDOW_MINUTES": str(verify_s / 60)}


def start_dispatcher(url: str, log: Path, policy: dict[str, str],
                     port: int) -> subprocess.Popen[bytes]:
    """A real `hourglass dispatcher run` on 127.0.0.1:port; its output appended to `log`."""
    env = {**os.environ, **policy, "HOURGLASS_DATABASE_URL": url,
           "HOURGLASS_HTTP_ADDR": f"127.0.0.1:{port}"}
    with log.open("a") as out:  # the child keeps its own descriptor
        return subprocess.Popen([sys.executable, "-m", "hourglass.cli", "dispatcher", "run"],
                                env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
