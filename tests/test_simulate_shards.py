"""How the simulator splits a fleet among worker processes, and which failures each one
injects: every host in exactly one process, and the fleet's failures the same as one
process would inject them."""

from __future__ import annotations

import argparse
import random

import pytest

from hourglass.cli import parser
from hourglass.config import Config
from hourglass.simulate import (
    HOSTS_PER_PROCESS,
    KINDS,
    MAX_PER_PROCESS,
    Failures,
    fleet_hosts,
    problem_with,
    split,
)


def args(*argv: str) -> argparse.Namespace:
    return parser().parse_args(["simulate", *argv])


@pytest.mark.parametrize(("hosts", "per", "sizes"), [
    (5, HOSTS_PER_PROCESS, [5]),
    (HOSTS_PER_PROCESS, HOSTS_PER_PROCESS, [HOSTS_PER_PROCESS]),
    (HOSTS_PER_PROCESS + 1, HOSTS_PER_PROCESS, [76, 75]),
    (1000, 150, [143] * 6 + [142]),
    (5, 2, [2, 2, 1]),
    (3, 1, [1, 1, 1]),
])
def test_a_fleet_is_split_evenly_and_every_host_runs_once(
    hosts: int, per: int, sizes: list[int],
) -> None:
    a = args("--hosts", str(hosts), "--per-process", str(per))
    fleet = fleet_hosts(a)
    shards = split(a, fleet, 0.0)
    assert [len(s.hosts) for s in shards] == sizes
    assert [h for s in shards for h in s.hosts] == fleet  # each once, in fleet order
    assert all(s.fleet == tuple(sorted(h for h, _ in fleet)) for s in shards)


def test_a_fixed_failure_goes_to_the_process_of_its_host() -> None:
    a = args("--hosts", "5", "--per-process", "2",
             "--fail", "sim-0004:disk:20s", "--fail", "sim-0001:fan:1m")
    shards = split(a, fleet_hosts(a), 0.0)
    assert [s.fails for s in shards] == [((60.0, "sim-0001", "fan"),),
                                         ((20.0, "sim-0004", "disk"),), ()]


def due(f: Failures, until_s: float) -> list[tuple[float, str, str]]:
    """Every failure ``f`` injects, second by second, with the second it is due."""
    return [(float(t), host, kind) for t in range(int(until_s) + 1) for host, kind in f.due(t)]


def test_random_failures_across_processes_are_those_of_one_process() -> None:
    whole = args("--hosts", "7", "--fail-every", "10s", "--seed", "3")
    one = due(Failures(split(whole, fleet_hosts(whole), 0.0)[0]), 200)
    parted = args("--hosts", "7", "--fail-every", "10s", "--seed", "3", "--per-process", "3")
    shards = split(parted, fleet_hosts(parted), 0.0)
    assert len(shards) == 3
    many = sorted(x for s in shards for x in due(Failures(s), 200))
    assert many == one
    # the sequence a single loop drew before the split: host, then kind, every interval
    rng = random.Random(3)
    names = sorted(h for h, _ in fleet_hosts(whole))
    assert one == [(10.0 * k, rng.choice(names), rng.choice(KINDS)) for k in range(1, 21)]


def test_failures_are_due_once_and_in_time() -> None:
    a = args("--hosts", "2", "--fail", "sim-0002:power:5", "--fail", "sim-0001:disk:5")
    f = Failures(split(a, fleet_hosts(a), 0.0)[0])
    assert f.due(4.9) == []
    assert f.due(5.0) == [("sim-0001", "disk"), ("sim-0002", "power")]
    assert f.due(100.0) == []


@pytest.mark.parametrize(("argv", "why"), [
    (("--hosts", "0"), "no hosts to simulate"),
    (("--hosts", "2", "--fail", "sim-0009:disk:5"), "not simulated: sim-0009"),
    (("--hosts", "2", "--site", "two words"), "cannot simulate sim-0001 at site two words"),
])
def test_what_cannot_be_simulated_is_refused_with_why(argv: tuple[str, ...], why: str) -> None:
    a = args(*argv)
    problem = problem_with(a, Config(), fleet_hosts(a))
    assert problem is not None
    assert why in problem


@pytest.mark.parametrize("n", ["0", str(MAX_PER_PROCESS + 1), "many"])
def test_per_process_outside_what_select_can_watch_is_refused(
    n: str, capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        args("--hosts", "5", "--per-process", n)
    assert f"expected 1 to {MAX_PER_PROCESS} hosts" in capsys.readouterr().err
