"""The simulator publishes like the agent: through the agent's own spool and publisher.

Five virtual hosts, the broker away for 20 s, the simulator SIGKILLed 10 s into the outage
and started again on the same --state: every seq any host numbered is stored exactly once
(but the seqs of last wills that never fired). Before, each host lost what it produced
while the broker was away: the simulator numbered from the spool and published through
paho's memory.

The same with the fleet split among worker processes (--per-process): a SIGKILLed simulator
takes its workers with it, and the one started again on the same state loses nothing.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import psycopg

from tests.agent.brokers import Broker
from tests.collector.live import Collector, seed
from tests.conftest import eventually

HOSTS = [f"sim-{i:04d}" for i in range(1, 6)]
_WILL = re.compile(r"(sim-\d{4}): last will of session \w+ holds seq (\d+)")


def simulate(state: Path, url: str, pg_url: str, log: Path,
             *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HOURGLASS_MQTT_URL": url, "HOURGLASS_DATABASE_URL": pg_url}
    with open(log, "ab") as f:
        return subprocess.Popen(
            [sys.executable, "-m", "hourglass.cli", "simulate", "--hosts", str(len(HOSTS)),
             "--site", "sim1", "--interval", "1", "--state", str(state), *extra],
            env=env, stdout=f, stderr=f)


def numbered(state: Path) -> dict[str, int]:
    db = sqlite3.connect(state / "seq.db")
    try:
        return {h: int(n) for h, n in db.execute("SELECT host, last FROM seq")}
    finally:
        db.close()


def stored(pg_url: str) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {h: [] for h in HOSTS}
    with psycopg.connect(pg_url) as conn:
        for h, s in conn.execute("SELECT host_id, seq FROM ingest_keys ORDER BY seq"):
            out[h].append(int(s))
    return out


def missing(state: Path, pg_url: str, log: Path) -> dict[str, set[int]]:
    wills: dict[str, set[int]] = {h: set() for h in HOSTS}
    for host, seq in _WILL.findall(log.read_text()):
        wills[host].add(int(seq))
    have = stored(pg_url)
    return {h: gone for h, last in numbered(state).items()
            if (gone := set(range(1, last + 1)) - set(have[h]) - wills[h])}


def test_a_simulator_killed_in_a_broker_outage_loses_nothing(
    tmp_path: Path, pg_url: str, persistent_broker: Broker,
) -> None:
    seed(pg_url, "sim1", {"r1": HOSTS})
    col = Collector(pg_url, persistent_broker.url)
    col.start()
    state, log = tmp_path / "sim", tmp_path / "simulate.log"
    sim = simulate(state, persistent_broker.url, pg_url, log)
    try:
        eventually(lambda: all(len(s) >= 3 for s in stored(pg_url).values()), 30,
                   "every host's first messages stored", 0.2)
        persistent_broker.stop()
        time.sleep(10)
        before = numbered(state)
        sim.send_signal(signal.SIGKILL)  # with ten seconds of each host's messages waiting
        sim.wait(timeout=10)
        sim = simulate(state, persistent_broker.url, pg_url, log)
        time.sleep(10)
        persistent_broker.start()
        eventually(lambda: not missing(state, pg_url, log), 60,
                   "every numbered seq stored after the outage and the kill", 0.5)
        sim.send_signal(signal.SIGTERM)
        assert sim.wait(timeout=30) == 0
    finally:
        if sim.poll() is None:
            sim.kill()
            sim.wait(timeout=10)
        col.stop()
    after = numbered(state)
    assert all(after[h] >= before[h] + 15 for h in HOSTS), (before, after)  # it kept producing
    assert not missing(state, pg_url, log)
    have = stored(pg_url)
    for h in HOSTS:
        assert len(have[h]) == len(set(have[h]))  # stored once: keys are unique per host
        assert after[h] in have[h], f"{h}: its planned-stop state (the last seq) is stored"
    with psycopg.connect(pg_url) as conn:
        (dup,) = conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM telemetry GROUP BY time, host_id, component,"
            " metric HAVING count(*) > 1) d").fetchone()
    assert dup == 0


def test_a_simulator_in_worker_processes_killed_takes_them_along_and_loses_nothing(
    tmp_path: Path, pg_url: str, persistent_broker: Broker,
) -> None:
    seed(pg_url, "sim1", {"r1": HOSTS})
    col = Collector(pg_url, persistent_broker.url)
    col.start()
    state, log = tmp_path / "sim", tmp_path / "simulate.log"
    split = ("--per-process", "2")  # five hosts in three workers (2, 2, 1)
    sim = simulate(state, persistent_broker.url, pg_url, log, *split)
    try:
        eventually(lambda: all(len(s) >= 3 for s in stored(pg_url).values()), 30,
                   "every host's first messages stored", 0.2)
        workers = [p for p in psutil.Process(sim.pid).children()
                   if "multiprocessing" in " ".join(p.cmdline())
                   and "resource_tracker" not in " ".join(p.cmdline())]
        assert len(workers) == 3, [p.cmdline() for p in workers]
        sim.send_signal(signal.SIGKILL)
        sim.wait(timeout=10)
        _, alive = psutil.wait_procs(workers, timeout=5)
        assert not alive, "workers outlived the simulator they belong to"
        sim = simulate(state, persistent_broker.url, pg_url, log, *split)
        time.sleep(3)
        eventually(lambda: not missing(state, pg_url, log), 60,
                   "every numbered seq stored after the kill", 0.5)
        sim.send_signal(signal.SIGTERM)
        assert sim.wait(timeout=30) == 0
    finally:
        if sim.poll() is None:
            sim.kill()
            sim.wait(timeout=10)
        col.stop()
    assert not missing(state, pg_url, log)
    have, after = stored(pg_url), numbered(state)
    for h in HOSTS:
        assert len(have[h]) == len(set(have[h]))
        assert after[h] in have[h], f"{h}: its planned-stop state (the last seq) is stored"
