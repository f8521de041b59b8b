"""``hourglass-agent``: run the daemon, collect once, capture a replay root, check a config."""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from agent import __version__
from agent.config import AgentConfig, load_config
from agent.core import Reporter, probe_context
from agent.link import Link
from agent.probes import default_registry
from agent.root import Root
from agent.sdnotify import Watchdog
from agent.settings import ConfigError
from agent.spool import Spool

log = logging.getLogger("agent")
#: On a planned stop, how long to wait for the broker to take the spooled messages.
SHUTDOWN_FLUSH_S = 5.0
#: Longest wait in one loop turn: idle (a stop signal is seen within a second) and busy.
IDLE_STEP_S = 1.0
BUSY_STEP_S = 0.2


def utcnow() -> datetime:
    """The wall clock, timezone-aware (the one clock the agent's messages carry)."""
    return datetime.now(UTC)


def _reporter(cfg: AgentConfig, root: Root, next_seq: itertools.count[int] | Spool) -> Reporter:
    """A Reporter over the enabled probes."""
    # the daemon's probes keep their durable state (EDAC offsets, baselines) in the spool
    ctx = probe_context(cfg, next_seq if isinstance(next_seq, Spool) else None)
    probes = default_registry().build(cfg.probes, ctx)
    # the spool commits each seq with its message's row, so a kill in between leaves no hole
    seq = next_seq.draft_seq if isinstance(next_seq, Spool) else next_seq.__next__
    return Reporter(
        host=cfg.host,
        site=cfg.site,
        interval_s=cfg.interval_s,
        probes=probes,
        root=root,
        next_seq=seq,
        clock=utcnow,
    )


def cmd_once_proxy(cfg: AgentConfig) -> int:
    """Proxy mode: poll each target once and print its messages; 1 if any target failed."""
    from agent.proxy import collect_once

    status = 0
    for target, got in collect_once(cfg.proxy.targets, utcnow):
        if not isinstance(got, list):
            print(f"hourglass-agent: target {target.host}: {got}", file=sys.stderr)
            status = 1
            continue
        for msg in got:
            print(json.dumps({"topic": msg.topic, "payload": msg.payload}), flush=True)
    return status


def cmd_once(cfg: AgentConfig, root_dir: str | None) -> int:
    """Collect once and print each message as {"topic", "payload"}; no broker, no spool."""
    if cfg.proxy.targets and root_dir is None:
        return cmd_once_proxy(cfg)
    root = Root(root_dir or cfg.root)
    rep = _reporter(cfg, root, itertools.count(1))  # a private seq: the spool is untouched
    result = rep.refresh()  # first, so the birth carries this collection's inventory
    try:
        for msg in [rep.birth(), rep.state(True), *rep.report(result)]:
            print(json.dumps({"topic": msg.topic, "payload": msg.payload}), flush=True)
    except BrokenPipeError:  # `once | head` is a normal way to look
        sys.stderr.close()
    return 0


def cmd_run(cfg: AgentConfig, stop: threading.Event | None = None) -> int:
    """The daemon: collect every interval, spool, publish; stop on SIGTERM/SIGINT."""
    stop = stop or _stop_on_signals()
    if cfg.proxy.targets:
        from agent.proxy import Proxy

        log.info("hourglass-agent %s: proxy for %s, broker %s", __version__,
                 ", ".join(t.host for t in cfg.proxy.targets), cfg.mqtt_url)
        from agent.snmp import SnmpError

        try:
            Proxy(cfg, utcnow).run(stop)
        except SnmpError as exc:  # the trap address is taken or not this host's
            print(f"hourglass-agent: key 'proxy.traps': {exc}", file=sys.stderr)
            return 2
        return 0
    spool = Spool(cfg.spool_path, cfg.host, cap_bytes=cfg.spool_cap_bytes,
                  retention_s=cfg.spool_retention_s)
    rep = _reporter(cfg, Root(cfg.root), spool)
    link = Link(cfg, spool, rep)
    pub = link.publisher
    watchdog = Watchdog()
    watchdog.ready()  # the spool is open: from here on nothing collected is lost
    log.info(
        "hourglass-agent %s: host %s site %s broker %s",
        __version__,
        cfg.host,
        cfg.site,
        cfg.mqtt_url,
    )
    next_collect = time.monotonic()
    try:
        while not stop.is_set():
            watchdog.ping()
            now = time.monotonic()
            if now >= next_collect:
                for msg in rep.report():
                    link.put(msg)
                # keep the cadence; after a long stall, skip missed slots instead of bursting
                next_collect = max(next_collect + cfg.interval_s, now)
            # idle, the loop sleeps in paho's select for up to 1 s (it wakes on traffic);
            # with messages to move it comes back every 0.2 s to publish more
            cap = IDLE_STEP_S if pub.connected and pub.idle() else BUSY_STEP_S
            cap = min(cap, watchdog.interval or cap)
            pub.step(timeout=max(0.01, min(cap, next_collect - time.monotonic())))
        watchdog.stopping()
        link.stop(SHUTDOWN_FLUSH_S)
    finally:
        pub.close()
        spool.close()
    return 0


def _stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT."""
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def cmd_check(cfg: AgentConfig, file: Path, root_dir: str | None = None,
              probes: bool = True) -> int:
    """Beyond parsing: the files the config names must be usable; errors name file and key.
    Then each probe runs once and says what it can watch (a coverage gap exits 0: it is
    for the operator to fix, and the agent reports it in its birth)."""
    from agent.preflight import coverage, coverage_line, problems

    found = problems(cfg)
    for key, why in found:
        print(f"hourglass-agent: {file}: key '{key}': {why}", file=sys.stderr)
    if found:
        return 2
    proxied = f", proxy for {', '.join(t.host for t in cfg.proxy.targets)}" if (
        cfg.proxy.targets) else ""
    print(f"{file}: ok (host {cfg.host}, site {cfg.site}, broker {cfg.mqtt_url}, "
          f"probes {', '.join(cfg.probes)}{proxied})")
    if probes and not cfg.proxy.targets:
        built = default_registry().build(cfg.probes, probe_context(cfg))
        for c in coverage(built, Root(root_dir or cfg.root)):
            print(coverage_line(c))
    return 0


def cmd_capture(out: Path) -> int:
    """Write this host's replay root."""
    from agent.capture import capture

    for rel in capture(out):
        print(rel)
    return 0


def parser() -> argparse.ArgumentParser:
    """The command line."""
    p = argparse.ArgumentParser(prog="hourglass-agent", description=__doc__)
    p.add_argument("--version", action="version", version=__version__)
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    sub = p.add_subparsers(dest="command", required=True)
    sp = sub.add_parser("run", help="run the agent daemon")
    sp.add_argument("--config", type=Path, required=True)
    sp = sub.add_parser("check", help="validate the config, then run each probe once and "
                                      "say what it can watch here")
    sp.add_argument("--config", type=Path, required=True)
    sp.add_argument("--root", help="read a replay root instead of this host")
    sp.add_argument("--config-only", action="store_true",
                    help="only the config and its files (fast: systemd's ExecStartPre)")
    sp = sub.add_parser("once", help="collect once and print the messages it would send")
    sp.add_argument("--config", type=Path, required=True)
    sp.add_argument("--root", help="read a replay root instead of this host")
    sp = sub.add_parser("capture", help="write this host's hardware state as a replay root")
    sp.add_argument("--out", type=Path, required=True)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``hourglass-agent``; returns the exit status."""
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command == "capture":
        return cmd_capture(args.out)
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(f"hourglass-agent: {exc}", file=sys.stderr)
        return 2
    if args.command == "check":
        return cmd_check(cfg, args.config, args.root, not args.config_only)
    if args.command == "once":
        return cmd_once(cfg, args.root)
    return cmd_run(cfg)
